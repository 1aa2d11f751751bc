"""VideoMDM training over the lake: release data in, checkpoints and a ``runs`` row out.

``run_training`` is a plain function so that torchrun can launch it on every rank (see
``videomdm train``); the Prefect flow calls it through the ``train_task`` wrapper. Rank 0
alone writes checkpoints and the run row.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.config import Preset, preset
from videomdm.errors import UserError
from videomdm.models.mdm.config import DenoiserConfig, Supervision, TrainConfig
from videomdm.models.mdm.text_encoder import TextEncoder
from videomdm.models.mdm.trainer import Trainer, read_state
from videomdm.progress import progress_bar
from videomdm.storage import Lake
from videomdm.storage.checkpoints import (
    VIDEOMDM_CHECKPOINTS,
    checkpoint_uri,
    open_checkpoint,
    write_checkpoint,
)
from videomdm.storage.codecs import NO_CAPTION
from videomdm.storage.datasets import TrainingSet, training_set
from videomdm.storage.lake import utcnow
from videomdm.storage.runs import TRAIN, Run, get_run, new_run_id, record_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRequest:
    """What to train: a release (None: the tables as they are now), or a run to resume."""

    release: str | None = None
    supervision: Supervision = "2d"
    preset: Preset = "small"
    steps: int | None = None  # the preset's budget when None; a resumed run may train longer
    resume: str | None = None  # run id


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    checkpoint: str
    step: int
    loss: float | None
    samples: int


def run_training(
    lake: Lake,
    req: TrainRequest,
    device: str = "cpu",
    rank: int = 0,
    world_size: int = 1,
    flow_run_id: str | None = None,
) -> TrainResult:
    """Train (or resume) VideoMDM on a release; rank 0 checkpoints and records the run."""
    prior = _prior_run(lake, req.resume) if req.resume else None
    state = _read_checkpoint(prior) if prior else None
    release = prior.release if prior else req.release
    data = training_set(lake, release)
    model_cfg, cfg = _configs(req, state)
    cond = TextEncoder(device).encode([s.text or NO_CAPTION for s in data.samples])
    trainer = Trainer(
        data.samples, cond, model_cfg, cfg, device=device, rank=rank, world_size=world_size
    )
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resumed run %s at step %d of %d", req.resume, trainer.step, cfg.steps)
    run = _run_row(lake, req, prior, data, trainer, flow_run_id)
    extra = {"run_id": run.run_id, "release": release, "lineage": dataclasses.asdict(data.lineage)}
    uri = run.checkpoint_uri
    assert uri is not None

    def checkpoint(tr: Trainer) -> None:
        if rank == 0:
            write_checkpoint(uri, lambda path: tr.save(path, extra))
            record_run(lake, dataclasses.replace(run, metrics=_metrics(tr)))

    bar = progress_bar("train", cfg.steps, trainer.step) if rank == 0 else nullcontext(None)
    with bar as advance:  # one bar, rank 0's
        trainer.fit(on_checkpoint=checkpoint, progress=advance)
    if rank == 0:
        record_run(lake, run.finished(_metrics(trainer)))
    last = trainer.history[-1] if trainer.history else {}
    return TrainResult(run.run_id, uri, trainer.step, last.get("total"), len(trainer.samples))


train_task = task(name="train-videomdm", cache_policy=NO_CACHE, tags=["gpu"])(run_training)


def _configs(req: TrainRequest, state: dict[str, Any] | None) -> tuple[DenoiserConfig, TrainConfig]:
    """The preset's configs, or a resumed checkpoint's (only the step budget may change)."""
    if state is None:
        return preset(req.preset, req.supervision, req.steps)
    steps = {"steps": req.steps} if req.steps else {}
    return DenoiserConfig(**state["model_config"]), TrainConfig(**(state["train_config"] | steps))


def _run_row(
    lake: Lake,
    req: TrainRequest,
    prior: Run | None,
    data: TrainingSet,
    trainer: Trainer,
    flow_run_id: str | None,
) -> Run:
    run_id = prior.run_id if prior else new_run_id()
    config = {
        "release": data.lineage.release,
        "preset": req.preset,
        "train": dataclasses.asdict(trainer.cfg),
        "model": dataclasses.asdict(trainer.model_cfg),
        "lineage": dataclasses.asdict(data.lineage),
        "world_size": trainer.world_size,
        "dropped": dict(trainer.dropped),
    }
    return Run(
        run_id,
        TRAIN,
        config,
        checkpoint_uri=checkpoint_uri(lake, VIDEOMDM_CHECKPOINTS, run_id),
        release=data.lineage.release,
        started_at=prior.started_at if prior else utcnow(),
        flow_run_id=flow_run_id,
    )


def _metrics(trainer: Trainer) -> dict[str, Any]:
    last = trainer.history[-1] if trainer.history else {}
    return {
        "step": trainer.step,
        "loss": last.get("total"),
        "history": trainer.history,
        "samples": len(trainer.samples),
    }


def _prior_run(lake: Lake, run_id: str) -> Run:
    run = get_run(lake, run_id, TRAIN)
    if run is None:
        raise UserError(
            f"no training run {run_id!r} in the lake (see `videomdm sql "
            f"\"select run_id, status from runs where kind = 'train'\"`)"
        )
    return run


def _read_checkpoint(run: Run) -> dict[str, Any]:
    assert run.checkpoint_uri is not None, "a training run always names its checkpoint"
    with open_checkpoint(run.checkpoint_uri) as path:
        return read_state(path)
