"""Motion-data flows: cut clips, train and evaluate the 2D-to-3D lifter, lift clips to 3D."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from videomdm.config import get_settings
from videomdm.models.evaluation.metrics import evaluate_lifter
from videomdm.models.lifter.network import LifterConfig, load_checkpoint
from videomdm.models.lifter.train import split_by_clip, train_lifter
from videomdm.models.motion.clips import ClipConfig
from videomdm.models.motion.mocap import MocapClip, load_mocap_dir
from videomdm.progress import progress_bar
from videomdm.storage import Lake
from videomdm.storage.lake import utcnow
from videomdm.storage.sources import local_path
from videomdm.tasks.extract import latest_extractor
from videomdm.tasks.motion import (
    clip_producer,
    clips_for_video,
    latest_run,
    lift_video,
    lifter_id_of,
    new_run_id,
    record_run,
    save_lifter,
    videos_needing,
)

log = logging.getLogger(__name__)


def _run_id() -> str | None:
    return str(flow_run.id) if flow_run.id else None


@flow(name="make-clips")
def clips_flow(
    collection: str | None = None, extractor: str | None = None, lake: str | None = None
) -> dict[str, Any]:
    """Cut every extracted video's tracks into clean clips (idempotent per video)."""
    lake = lake or get_settings().lake
    extractor = extractor or latest_extractor(Lake(lake))
    cfg = ClipConfig()
    todo = videos_needing(lake, "clips", extractor, clip_producer(extractor, cfg), collection)
    total = 0
    with progress_bar("clips", total=len(todo)) as advance:
        for video in todo:
            total += clips_for_video(lake, video, extractor, cfg, _run_id())
            advance(1)
    return {"videos": len(todo), "clips": total, "producer": clip_producer(extractor, cfg)}


@task(cache_policy=NO_CACHE)
def load_mocap(dirs: list[str], fps: float) -> list[MocapClip]:
    """Every supported mocap file under ``dirs`` on the canonical skeleton."""
    clips: list[MocapClip] = []
    for d in dirs:
        loaded = load_mocap_dir(d, fps=fps)
        for path, err in getattr(loaded, "failures", []):
            log.warning("skipped %s: %s", path, err)
        clips += list(loaded)
    if not clips:
        raise ValueError(f"no mocap clips found under {dirs}")
    return clips


def lifter_config(steps: int | None = None) -> LifterConfig:
    """The default lifter config, trained for ``steps`` when given."""
    return LifterConfig() if steps is None else dataclasses.replace(LifterConfig(), steps=steps)


@task(cache_policy=NO_CACHE, tags=["gpu"])
def fit_lifter(
    train: list[MocapClip], val: list[MocapClip], cfg: LifterConfig, seed: int
) -> tuple[Any, dict[str, list[float]], dict[str, float]]:
    """Train the lifter (mocap through random cameras) and score it on the held-out clips."""
    model, history = train_lifter(train, val, cfg, seed=seed)
    metrics = evaluate_lifter(model, val, np.random.default_rng(seed + 7), cfg.noise)
    return model, history, metrics


@flow(name="train-lifter")
def train_lifter_flow(
    mocap: list[str],
    steps: int | None = None,
    seed: int = 0,
    lake: str | None = None,
    fps: float = 30.0,
) -> dict[str, Any]:
    """Train the 2D-to-3D lifter on mocap, save its checkpoint and record the run."""
    lake = lake or get_settings().lake
    cfg = lifter_config(steps)
    run_id, started = new_run_id(), utcnow()
    clips = load_mocap(mocap, fps)
    train, val = split_by_clip(clips, seed=seed)
    model, history, scores = fit_lifter(train, val, cfg, seed)
    metrics: dict[str, Any] = {
        **scores,
        "history": history,
        "val_clips": sorted(c.name for c in val),
        "train_clips": len(train),
    }
    uri = save_lifter(model, cfg, lake, run_id, {"run_id": run_id})
    record_run(
        lake,
        dict(
            run_id=run_id,
            kind="train-lifter",
            config_json=cfg.to_dict(),
            metrics_json=metrics,
            checkpoint_uri=uri,
            status="ok",
            started_at=started,
            finished_at=utcnow(),
            flow_run_id=_run_id(),
        ),
    )
    create_table_artifact(
        key="lifter-metrics",
        table=[
            {"metric": k, "value": round(v, 2)} for k, v in metrics.items() if isinstance(v, float)
        ],
    )
    return {"run_id": run_id, "checkpoint": uri, "metrics": metrics}


def current_lifter(lake: str) -> dict[str, Any]:
    run = latest_run(lake, "train-lifter")
    if run is None:
        raise ValueError("no trained lifter in the lake; run `videomdm train-lifter --mocap DIR`")
    return run


@flow(name="lift-clips")
def lift_flow(collection: str | None = None, lake: str | None = None) -> dict[str, Any]:
    """Lift every clip without a motion from the current lifter (one commit per video)."""
    lake = lake or get_settings().lake
    run = current_lifter(lake)
    lifter_id = lifter_id_of(run)
    clip_prod = clip_producer(latest_extractor(Lake(lake)), ClipConfig())
    todo = videos_needing(lake, "motions", clip_prod, lifter_id, collection)
    total = 0
    with progress_bar("lift", total=len(todo)) as advance:
        for video in todo:
            total += lift_video(
                lake, video.video_id, clip_prod, run["checkpoint_uri"], lifter_id, _run_id()
            )
            advance(1)
    return {"videos": len(todo), "motions": total, "lifter_id": lifter_id}


@flow(name="eval-lifter")
def eval_lifter_flow(
    mocap: list[str], split: str = "val", seed: int = 0, lake: str | None = None
) -> dict[str, float]:
    """The current lifter on mocap through random cameras: MPJPE, PA-MPJPE, accel (clean, noisy)."""
    if split not in ("val", "all"):
        raise ValueError(f"split must be 'val' or 'all', got {split!r}")
    lake = lake or get_settings().lake
    run = current_lifter(lake)
    clips = load_mocap(mocap, 30.0)
    if split == "val":
        import json

        held_out = set(json.loads(run["metrics_json"]).get("val_clips", []))
        clips = [c for c in clips if c.name in held_out]
        if not clips:
            raise ValueError(
                "none of these clips was held out when the lifter was trained; use --split all"
            )
    with local_path(run["checkpoint_uri"]) as path:
        model, cfg, _ = load_checkpoint(path)
    return evaluate_lifter(model, clips, np.random.default_rng(seed + 7), cfg.noise)
