"""Lifter tasks: mocap in, a trained 2D-to-3D lifter out (checkpoint and run), clips lifted."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.errors import UserError
from videomdm.models.evaluation.lifter import evaluate_lifter
from videomdm.models.lifter.network import (
    Lifter,
    LifterConfig,
    camera_to_world,
    lift_many,
    load_checkpoint,
    save_checkpoint,
)
from videomdm.models.lifter.train import train_lifter
from videomdm.models.motion.mocap import MocapClip, load_mocap_dir
from videomdm.progress import progress_bar
from videomdm.storage import Lake
from videomdm.storage.catalog import video_clips
from videomdm.storage.checkpoints import (
    LIFTER_CHECKPOINTS,
    checkpoint_uri,
    open_checkpoint,
    write_checkpoint,
)
from videomdm.storage.codecs import clip_keypoints, motion_row
from videomdm.storage.lake import rows_to_table
from videomdm.storage.markers import DONE, NO_PERSON, append_item, claim, clear_unmarked, set_marker
from videomdm.storage.runs import LIFTER, Run, latest_run, record_run
from videomdm.tasks.retry import transient_only

log = logging.getLogger(__name__)


@task(cache_policy=NO_CACHE)
def load_mocap(dirs: list[str], fps: float) -> list[MocapClip]:
    """Every supported mocap file under ``dirs`` on the canonical skeleton."""
    clips: list[MocapClip] = []
    for d in dirs:
        loaded = load_mocap_dir(d, fps=fps)
        for path, err in loaded.failures:
            log.warning("skipped %s: %s", path, err)
        clips += list(loaded)
    if not clips:
        raise UserError(f"no mocap clips found under {dirs}")
    return clips


@task(cache_policy=NO_CACHE, tags=["gpu"])
def fit_lifter(
    train: list[MocapClip], val: list[MocapClip], cfg: LifterConfig, seed: int
) -> tuple[Lifter, dict[str, list[float]]]:
    """Train the lifter on mocap through random cameras; its validation history."""
    with progress_bar("lifter", total=cfg.steps) as advance:
        return train_lifter(train, val, cfg, seed=seed, progress=advance)


@task(cache_policy=NO_CACHE)
def score_lifter(
    model: Lifter, clips: list[MocapClip], cfg: LifterConfig, seed: int
) -> dict[str, float]:
    """MPJPE, PA-MPJPE, acceleration (clean and noisy 2D, and the no-learning baseline)."""
    return evaluate_lifter(model, clips, np.random.default_rng(seed + 7), cfg.noise)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def save_lifter(lake: Lake, model: Lifter, cfg: LifterConfig, run: Run) -> Run:
    """The lifter's checkpoint beside the tables, and its finished run row."""
    uri = checkpoint_uri(lake, LIFTER_CHECKPOINTS, run.run_id)
    write_checkpoint(uri, lambda path: save_checkpoint(path, model, cfg, {"run_id": run.run_id}))
    run = dataclasses.replace(run, checkpoint_uri=uri)
    record_run(lake, run)
    return run


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def current_lifter(lake: Lake) -> Run:
    """The newest trained lifter's run; UserError when there is none."""
    run = latest_run(lake, LIFTER)
    if run is None:
        raise UserError("no trained lifter in the lake; run `videomdm train-lifter --mocap DIR`")
    return run


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def load_lifter(run: Run) -> tuple[Lifter, LifterConfig]:
    """A lifter run's model (eval mode) and config, read with ``weights_only=True``."""
    assert run.checkpoint_uri is not None, "a finished lifter run has a checkpoint"
    with open_checkpoint(run.checkpoint_uri) as path:
        model, cfg, _ = load_checkpoint(path)
    return model, cfg


@task(cache_policy=NO_CACHE)
def lift_video(
    lake: Lake,
    video_id: str,
    clip_prod: str,
    model: Lifter,
    lifter_id: str,
    flow_run_id: str | None,
) -> int:
    """Lift every clip of one video: one append into ``motions``, then its marker."""
    with claim(lake, "motions", video_id, lifter_id) as finished:
        if finished is not None:
            log.info("%s: already lifted by a concurrent run", video_id)
            return 0
        clear_unmarked(lake, "motions", "video_id", video_id, "lifter_id", lifter_id)
        clips = video_clips(lake, video_id, clip_prod)
        keypoints = [clip_keypoints(c) for c in clips]
        lifted = lift_many(model, [u for u, _ in keypoints], [c for _, c in keypoints])
        rows = [
            motion_row(clip, lifter_id, *camera_to_world(cam))
            for clip, cam in zip(clips, lifted, strict=True)
        ]
        meta = {"flow_run_id": flow_run_id, "video_id": video_id, "lifter_id": lifter_id}
        n, version = append_item(lake, "motions", [rows_to_table("motions", rows)], "lift", meta)
        status = DONE if n else NO_PERSON
        set_marker(
            lake,
            "motions",
            video_id,
            lifter_id,
            status,
            rows=n,
            data_version=version,
            flow_run_id=flow_run_id,
        )
        return n
