"""Motion-data flows: cut clips, train and evaluate the 2D-to-3D lifter, lift clips to 3D."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from prefect import flow
from prefect.artifacts import create_table_artifact

from videomdm.errors import UserError
from videomdm.flows.context import flow_run_id
from videomdm.models.lifter.network import LifterConfig
from videomdm.models.lifter.train import split_by_clip
from videomdm.models.motion.clips import ClipConfig
from videomdm.progress import progress_bar
from videomdm.storage import open_lake
from videomdm.storage.catalog import latest_extractor
from videomdm.storage.lake import utcnow
from videomdm.storage.runs import LIFTER, Run, lifter_id, new_run_id
from videomdm.tasks.clips import (
    clip_producer,
    cut_clips,
    read_intrinsics,
    videos_to_do,
    write_clips,
)
from videomdm.tasks.lifter import (
    current_lifter,
    fit_lifter,
    lift_video,
    load_lifter,
    load_mocap,
    save_lifter,
    score_lifter,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipsSummary:
    videos: int
    clips: int
    producer: str


@dataclass(frozen=True)
class LiftSummary:
    videos: int
    motions: int
    lifter_id: str


@flow(name="make-clips")
def clips_flow(
    collection: str | None = None,
    extractor: str | None = None,
    lake: str | None = None,
    intrinsics: str | None = None,
) -> ClipsSummary:
    """Cut every extracted video's tracks into clean clips (idempotent per video), through
    each video's known camera: ``intrinsics`` (a camera file: one camera for every video, or
    cameras named like the videos), else a sidecar beside the video, else the default field
    of view."""
    lk, run_id, cfg = open_lake(lake), flow_run_id(), ClipConfig()
    cameras = read_intrinsics(intrinsics) if intrinsics else None
    extractor = extractor or latest_extractor(lk)
    producer = clip_producer(extractor, cfg)
    todo = videos_to_do(lk, "clips", extractor, producer, collection)
    total = 0
    with progress_bar("clips", total=len(todo)) as advance:
        for video in todo:
            rows = cut_clips(lk, video, extractor, cfg, cameras)
            total += write_clips(lk, video.video_id, producer, rows, run_id)
            advance(1)
    return ClipsSummary(len(todo), total, producer)


def lifter_config(steps: int | None = None, base: LifterConfig | None = None) -> LifterConfig:
    """``base`` (default: the default lifter config), trained for ``steps`` when given."""
    cfg = base or LifterConfig()
    return cfg if steps is None else dataclasses.replace(cfg, steps=steps)


@flow(name="train-lifter")
def train_lifter_flow(
    mocap: list[str],
    steps: int | None = None,
    seed: int = 0,
    lake: str | None = None,
    fps: float = 30.0,
) -> Run:
    """Train the 2D-to-3D lifter on mocap, save its checkpoint and record the run."""
    lk, cfg = open_lake(lake), lifter_config(steps)
    run = Run(
        new_run_id(), LIFTER, config=cfg.to_dict(), started_at=utcnow(), flow_run_id=flow_run_id()
    )
    train, val = split_by_clip(load_mocap(mocap, fps), seed=seed)
    model, history = fit_lifter(train, val, cfg, seed)
    scores = score_lifter(model, val, cfg, seed)
    metrics = {
        **scores,
        "history": history,
        "val_clips": sorted(c.name for c in val),
        "train_clips": len(train),
    }
    run = save_lifter(lk, model, cfg, run.finished(metrics))
    create_table_artifact(
        key="lifter-metrics",
        table=[{"metric": k, "value": round(v, 2)} for k, v in scores.items()],
    )
    return run


@flow(name="lift-clips")
def lift_flow(collection: str | None = None, lake: str | None = None) -> LiftSummary:
    """Lift every clip without a motion from the current lifter (one commit per video)."""
    lk, run_id = open_lake(lake), flow_run_id()
    run = current_lifter(lk)
    lid = lifter_id(run)
    clip_prod = clip_producer(latest_extractor(lk), ClipConfig())
    todo = videos_to_do(lk, "motions", clip_prod, lid, collection)
    if not todo:
        return LiftSummary(0, 0, lid)
    model, _ = load_lifter(run)
    total = 0
    with progress_bar("lift", total=len(todo)) as advance:
        for video in todo:
            total += lift_video(lk, video.video_id, clip_prod, model, lid, run_id)
            advance(1)
    return LiftSummary(len(todo), total, lid)


@flow(name="eval-lifter")
def eval_lifter_flow(
    mocap: list[str], split: str = "val", seed: int = 0, lake: str | None = None
) -> dict[str, float]:
    """The current lifter on mocap through random cameras: MPJPE, PA-MPJPE, accel (clean, noisy)."""
    if split not in ("val", "all"):
        raise UserError(f"split must be 'val' or 'all', got {split!r}")
    run = current_lifter(open_lake(lake))
    clips = load_mocap(mocap, 30.0)
    if split == "val":
        held_out = set(run.metrics.get("val_clips", []))
        clips = [c for c in clips if c.name in held_out]
        if not clips:
            raise UserError(
                "none of these clips was held out when the lifter was trained; use --split all"
            )
    model, cfg = load_lifter(run)
    return score_lifter(model, clips, cfg, seed)
