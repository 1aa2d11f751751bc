"""VideoMDM training over the lake: release data in, checkpoints and a ``runs`` row out.

``run_training`` is a plain function so that torchrun can launch it on every rank (see
``videomdm train``); the Prefect flow calls it through the ``train_task`` wrapper. Rank 0
alone writes checkpoints and the run row.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.models.mdm.data import MotionSample
from videomdm.models.mdm.denoiser import DenoiserConfig
from videomdm.models.mdm.text_encoder import TextEncoder
from videomdm.models.mdm.trainer import TrainConfig, Trainer
from videomdm.progress import progress_bar
from videomdm.storage import Lake, run_sql
from videomdm.storage.lake import utcnow
from videomdm.storage.releases import release_versions
from videomdm.storage.sources import local_path
from videomdm.tasks.motion import (
    checkpoint_uri,
    latest_run,
    new_run_id,
    record_run,
    store_checkpoint,
)

log = logging.getLogger(__name__)

PRESETS = ("small", "paper")
KIND = "train"
NO_CAPTION = "a person moves"  # what an uncaptioned clip is conditioned on


def presets(preset: str, supervision: str, steps: int | None) -> tuple[DenoiserConfig, TrainConfig]:
    """The model and training configs of a preset (``small`` trains on a laptop CPU)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if preset == "small":
        model, cfg = DenoiserConfig.small(), TrainConfig(supervision=supervision)
    else:  # the paper: 8 x 512, batch 64 of 120-frame windows (on a GPU)
        model = DenoiserConfig.paper()
        cfg = TrainConfig(
            supervision=supervision,
            window=120,
            batch_size=64,
            lr=1e-4,
            steps=50_000,
            ema_decay=0.9999,
            checkpoint_every=5000,
        )
    return model, cfg if steps is None else dataclasses.replace(cfg, steps=steps)


@dataclass(frozen=True)
class TrainData:
    samples: list[MotionSample]
    lineage: dict[str, Any]  # release, table versions, lifter, clip ids


def load_training_data(lake_root: str, release: str | None = None) -> TrainData:
    """Every lifted clip (the newest lifter's, with a finished marker) joined to its 2D."""
    lake = Lake(lake_root)
    at = release_versions(lake, release) if release else None
    rows = run_sql(
        lake,
        "select m.clip_id, m.lifter_id, m.n_frames, m.fps, m.joints, m.cam_R, m.cam_t, "
        "c.u, c.conf, coalesce(c.caption, c.label) as text from motions m "
        "join clips c using (clip_id) join markers k on k.table_name = 'motions' "
        "and k.item_id = m.video_id and k.producer = m.lifter_id and k.status = 'done' "
        "order by m.lifter_id, m.clip_id",
        at=at,
    ).to_pylist()
    if not rows:
        where = f"release {release!r}" if release else "the lake"
        raise ValueError(f"no lifted clips in {where}; run `videomdm lift` first")
    lifter_id = _newest_lifter(lake_root, {r["lifter_id"] for r in rows})
    samples = [_sample(r) for r in rows if r["lifter_id"] == lifter_id]
    lineage = {
        "release": release,
        "table_versions": at or _current_versions(lake),
        "lifter_id": lifter_id,
        "clip_ids": [s.clip_id for s in samples],
    }
    log.info(
        "training data: %d clips, %d frames (lifter %s, release %s)",
        len(samples),
        sum(len(s.joints) for s in samples),
        lifter_id,
        release,
    )
    return TrainData(samples, lineage)


def _newest_lifter(lake_root: str, ids: set[str]) -> str:
    run = latest_run(lake_root, "train-lifter")
    current = f"lifter-{run['run_id']}" if run else None
    return current if current in ids else sorted(ids)[-1]


def _current_versions(lake: Lake) -> dict[str, int]:
    return {n: v for n in ("clips", "motions", "markers") if (v := lake.version(n)) is not None}


def _sample(r: dict[str, Any]) -> MotionSample:
    n = r["n_frames"]
    return MotionSample(
        joints=np.asarray(r["joints"], np.float32).reshape(n, 17, 3),
        u=np.asarray(r["u"], np.float32).reshape(n, 17, 2),
        conf=np.asarray(r["conf"], np.float32).reshape(n, 17),
        R=np.asarray(r["cam_R"], np.float64).reshape(3, 3),
        t=np.asarray(r["cam_t"], np.float64),
        text=r["text"] or NO_CAPTION,
        fps=float(r["fps"]),
        clip_id=r["clip_id"],
    )


def text_conditions(samples: list[MotionSample], device: str = "cpu") -> np.ndarray:
    """One 384-d sentence embedding per sample (its caption or ``NO_CAPTION``)."""
    return TextEncoder(device).encode([s.text or NO_CAPTION for s in samples])


def _save(trainer: Trainer, uri: str, extra: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = str(Path(tmp) / "videomdm.pt")
        torch.save(trainer.state_dict(extra), local)
        store_checkpoint(local, uri)


def load_checkpoint(uri: str) -> dict[str, Any]:
    """A VideoMDM checkpoint (plain tensors and values: ``weights_only=True``)."""
    with local_path(uri) as path:
        return torch.load(path, map_location="cpu", weights_only=True)


def run_training(
    lake_root: str,
    release: str | None = None,
    supervision: str = "2d",
    preset: str = "small",
    steps: int | None = None,
    resume: str | None = None,
    device: str = "cpu",
    rank: int = 0,
    world_size: int = 1,
    flow_run_id: str | None = None,
) -> dict[str, Any]:
    """Train (or resume run ``resume``) on a release; returns run id, checkpoint, metrics."""
    lake_root = Lake(lake_root).root
    prior = _run(lake_root, resume) if resume else None
    if prior:
        release = json.loads(prior["config_json"])["release"]
    data = load_training_data(lake_root, release)
    model_cfg, cfg = presets(preset, supervision, steps)
    if prior:  # the checkpoint's configs win; only the step budget may change
        state = load_checkpoint(prior["checkpoint_uri"])
        model_cfg = DenoiserConfig(**state["model_config"])
        cfg = TrainConfig(**(state["train_config"] | ({"steps": steps} if steps else {})))
    trainer = Trainer(
        data.samples,
        text_conditions(data.samples, device),
        model_cfg,
        cfg,
        device=device,
        rank=rank,
        world_size=world_size,
    )
    if prior:
        trainer.load_state_dict(state)
        log.info("resumed run %s at step %d of %d", resume, trainer.step, cfg.steps)
    run_id = resume or new_run_id()
    uri = checkpoint_uri(lake_root, "videomdm", run_id)
    config = {
        "release": release,
        "preset": preset,
        "train": dataclasses.asdict(cfg),
        "model": dataclasses.asdict(model_cfg),
        "lineage": data.lineage,
        "world_size": world_size,
        "dropped": dict(trainer.dropped),
    }
    row = dict(
        run_id=run_id,
        kind=KIND,
        release=release,
        config_json=config,
        checkpoint_uri=uri,
        started_at=prior["started_at"] if prior else utcnow(),
        flow_run_id=flow_run_id,
    )

    def checkpoint(tr: Trainer) -> None:
        if rank == 0:
            _save(tr, uri, {"run_id": run_id, "release": release, "lineage": data.lineage})
            record_run.fn(lake_root, row | {"status": "running", "metrics_json": _metrics(tr)})

    bar = progress_bar("train", cfg.steps, trainer.step) if rank == 0 else nullcontext(None)
    with bar as advance:  # one bar, rank 0's
        trainer.fit(on_checkpoint=checkpoint, progress=advance)
    metrics = _metrics(trainer)
    if rank == 0:
        record_run.fn(
            lake_root, row | {"status": "ok", "metrics_json": metrics, "finished_at": utcnow()}
        )
    return {"run_id": run_id, "checkpoint": uri, "metrics": metrics}


def _metrics(trainer: Trainer) -> dict[str, Any]:
    last = trainer.history[-1] if trainer.history else {}
    return {
        "step": trainer.step,
        "loss": last.get("total"),
        "history": trainer.history,
        "samples": len(trainer.samples),
    }


def train_run(lake_root: str, run_id: str) -> dict[str, Any] | None:
    """The ``runs`` row of training run ``run_id``, or None."""
    t = run_sql(
        Lake(lake_root), "select * from runs where run_id = ? and kind = ?", params=[run_id, KIND]
    )
    return t.to_pylist()[0] if t.num_rows else None


def _run(lake_root: str, run_id: str) -> dict[str, Any]:
    run = train_run(lake_root, run_id)
    if run is None:
        raise ValueError(
            f"no training run {run_id!r} in the lake (see `videomdm sql "
            f"\"select run_id, status from runs where kind = 'train'\"`)"
        )
    return run


def ddp_env() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment (0, 0, 1 without it)."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
    )


train_task = task(name="train-videomdm", cache_policy=NO_CACHE, tags=["gpu"])(run_training)
