"""Settings read from the environment (prefix ``VIDEOMDM_``) or a ``.env`` file.

Every stage takes a ``Settings`` object; nothing else reads the environment for these values.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Device = Literal["cpu", "cuda", "auto"]


class SettingsError(ValueError):
    """An invalid setting; the message names the variable and what is accepted."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDEOMDM_", env_file=".env", extra="ignore")

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

    @field_validator("lake")
    @classmethod
    def _lake_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @property
    def lake_is_local(self) -> bool:
        return "://" not in self.lake or self.lake.startswith("file://")

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch  # local: settings must not cost a torch import for storage-only commands

        return "cuda" if torch.cuda.is_available() else "cpu"


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(x) for x in e["loc"])
        parts.append(f"VIDEOMDM_{field.upper()}={e.get('input')!r}: {e['msg']}")
    return "invalid setting: " + "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; an invalid value raises ``SettingsError`` with one message."""
    try:
        return Settings()
    except ValidationError as e:
        raise SettingsError(_explain(e)) from None
