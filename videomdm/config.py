"""Settings and presets: the one reader of the environment.

``Settings`` reads ``VIDEOMDM_*`` variables (or a ``.env`` file) and the few foreign ones the
project honours (``HF_HUB_OFFLINE``, ``YOLO_OFFLINE``, ``XDG_CACHE_HOME``, ``RAY_ADDRESS``,
torchrun's ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``, ``USER``, and Prefect's ``PREFECT_API_URL``,
``PREFECT_HOME``, ``PREFECT_API_DATABASE_CONNECTION_URL``); every stage takes its values from
here. ``preset`` names the model and training configurations (``small`` trains on a laptop CPU,
``paper`` is the paper's). ``PROCESS_DEFAULTS`` are set by the command line before Prefect or
torch load. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from videomdm.errors import UserError
from videomdm.models.mdm.config import DenoiserConfig, Supervision, TrainConfig
from videomdm.models.perception.weights import WeightsSource

Device = Literal["cpu", "cuda", "auto"]
Runner = Literal["thread", "ray"]
Preset = Literal["small", "paper"]
DEVICES: tuple[str, ...] = get_args(Device)
RUNNERS: tuple[str, ...] = get_args(Runner)
PRESETS: tuple[str, ...] = get_args(Preset)

# Set (if unset) by the command line before anything else loads:
PROCESS_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # Where Prefect starts its temporary server itself (a flow called from Python, a Ray
    # worker), its 20 s default fails a first start that creates and migrates the database.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    "YOLO_OFFLINE": "1",  # Ultralytics must never download at run time
    # The project's own loggers reach the Prefect UI beside the run logger; outside a flow run
    # (CLI, tests) they log locally only, without a warning per line.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "videomdm",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # Before torch loads: idle OpenMP threads sleep instead of spinning. On shared cores spinning
    # made a 2-thread training step 5.7x slower (9.4 s vs 1.65 s, benchmarks/train_step.py).
    "OMP_WAIT_POLICY": "PASSIVE",
}
# Forwarded to Ray workers: a remote cluster does not share this process's environment.
# Paths (lake, weights) travel as task parameters; these change behaviour inside the tasks.
FORWARDED_TO_WORKERS = ("VIDEOMDM_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE", "OMP_WAIT_POLICY")


class SettingsError(UserError):
    """An invalid setting; the message names the variable and what is accepted."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIDEOMDM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    lake: str = Field(
        "./lake",
        description="Lake root: a local folder or any object-store URI (s3://, gs://, az://...).",
    )
    weights_dir: Path | None = Field(None, description="Folder holding model weights files.")
    device: Device = Field("cpu", description="Compute device: cpu, cuda or auto.")
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="Object-store options passed to deltalake (JSON), e.g. AWS_REGION.",
    )
    offline: bool = Field(False, description="Never download weights.")
    hf_hub_offline: bool = Field(False, validation_alias="HF_HUB_OFFLINE")
    yolo_offline: bool = Field(False, validation_alias="YOLO_OFFLINE")
    xdg_cache_home: Path | None = Field(None, validation_alias="XDG_CACHE_HOME")
    ray_address: str | None = Field(None, validation_alias="RAY_ADDRESS")
    rank: int = Field(0, validation_alias="RANK")
    local_rank: int = Field(0, validation_alias="LOCAL_RANK")
    world_size: int = Field(1, validation_alias="WORLD_SIZE")
    user: str = Field("", validation_alias="USER")
    # Prefect's own, read here to decide how a command gets its API (videomdm.flows.server)
    prefect_api_url: str | None = Field(None, validation_alias="PREFECT_API_URL")
    prefect_home: Path = Field(Path("~/.prefect"), validation_alias="PREFECT_HOME")
    prefect_database_url: str | None = Field(
        None, validation_alias="PREFECT_API_DATABASE_CONNECTION_URL"
    )

    @field_validator("lake")
    @classmethod
    def _lake_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @property
    def lake_is_local(self) -> bool:
        return "://" not in self.lake or self.lake.startswith("file://")

    def resolved_device(self, device: str | None = None) -> str:
        """``device`` (default: the setting), with ``auto`` resolved to cuda or cpu."""
        device = device or self.device
        if device != "auto":
            return device
        import torch  # local: settings must not cost a torch import for storage-only commands

        return "cuda" if torch.cuda.is_available() else "cpu"

    def weights_source(self) -> WeightsSource:
        """``$VIDEOMDM_WEIGHTS_DIR``, then the user cache; offline when any offline flag is set."""
        cache = (self.xdg_cache_home or Path.home() / ".cache") / "videomdm" / "weights"
        folders = ([str(self.weights_dir)] if self.weights_dir else []) + [str(cache)]
        offline = self.offline or self.hf_hub_offline or self.yolo_offline
        return WeightsSource(tuple(folders), offline)


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(x) for x in e["loc"])
        # a foreign variable's error names it (its alias); ours carry the prefix
        name = field if field.isupper() else f"VIDEOMDM_{field.upper()}"
        parts.append(f"{name}={e.get('input')!r}: {e['msg']}")
    return "invalid setting: " + "; ".join(parts)


def _explain_unparsed(err: PydanticSettingsError) -> str:
    m = re.search(r'field "(\w+)"', str(err))
    field = m.group(1) if m else None
    if field is None or field not in Settings.model_fields:
        return f"invalid setting: {err}"
    info = Settings.model_fields[field]
    name = info.validation_alias if isinstance(info.validation_alias, str) else None
    name = name or f"VIDEOMDM_{field.upper()}"
    what = "a JSON object" if field == "storage_options" else "a valid value"
    return f"invalid setting: {name}={os.environ.get(name, '')!r}: expected {what}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; an invalid value raises ``SettingsError`` with one message."""
    try:
        return Settings()
    except ValidationError as e:
        raise SettingsError(_explain(e)) from None
    except PydanticSettingsError as e:  # a value that does not even parse (JSON, say)
        raise SettingsError(_explain_unparsed(e)) from None


def apply_process_defaults() -> None:
    """Set ``PROCESS_DEFAULTS`` where the environment does not already say otherwise."""
    for key, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)


def forwarded_env() -> dict[str, str]:
    """The variables of ``FORWARDED_TO_WORKERS`` this process has, for remote workers."""
    return {k: os.environ[k] for k in FORWARDED_TO_WORKERS if k in os.environ}


# --- presets ------------------------------------------------------------------------------


def preset(
    name: str, supervision: Supervision = "2d", steps: int | None = None
) -> tuple[DenoiserConfig, TrainConfig]:
    """The denoiser and training configs of a preset; ``steps`` overrides its budget."""
    if name not in PRESETS:
        raise UserError(f"preset must be one of {PRESETS}, got {name!r}")
    # both presets denoise with the Gaussian skip (DenoiserConfig.skip): on the ladder it is
    # what makes a 2D-only model read x_t; and both make each lifted x0 consistent with its
    # keypoints (TrainConfig.x0_keypoints_hz): on the weak lifter's rung it cut FID 1163 -> 377
    # and reconstruction 316 -> 211 mm (docs/evaluation.md)
    kp = 1.0
    if name == "small":  # trains on a laptop CPU in minutes
        model = DenoiserConfig(width=128, n_layers=4, n_heads=4, ff_dim=256, skip="gaussian")
        cfg = TrainConfig(supervision=supervision, x0_keypoints_hz=kp)
    else:  # the paper: MDM's 8 x 512 encoder, batch 64 of 120-frame windows (on a GPU)
        model = DenoiserConfig(
            width=512, n_layers=8, n_heads=4, ff_dim=1024, dropout=0.1, skip="gaussian"
        )
        cfg = TrainConfig(
            supervision=supervision,
            x0_keypoints_hz=kp,
            window=120,
            batch_size=64,
            lr=1e-4,
            steps=50_000,
            ema_decay=0.9999,
            checkpoint_every=5000,
        )
    return model, cfg if steps is None else dataclasses.replace(cfg, steps=steps)
