"""Clip tasks: which videos still need clips, and one video's tracks cut into clips."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.models.motion.clips import Clip2D, ClipConfig, make_clips
from videomdm.storage import Lake
from videomdm.storage.catalog import VideoMeta, track_keypoints, videos_needing
from videomdm.storage.codecs import flat
from videomdm.storage.lake import rows_to_table, utcnow
from videomdm.storage.markers import DONE, NO_PERSON, set_marker
from videomdm.tasks.retry import transient_only

log = logging.getLogger(__name__)


def clip_producer(extractor: str, cfg: ClipConfig) -> str:
    """Clips depend on the keypoints' extractor and on the clip settings."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode()).hexdigest()
    return f"{extractor}/clips-{h[:8]}"


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def videos_to_do(
    lake: Lake, table: str, upstream: str, producer: str, collection: str | None
) -> list[VideoMeta]:
    """Videos whose ``upstream`` output is done and ``table`` has nothing from ``producer``."""
    return videos_needing(lake, table, upstream, producer, collection)


@task(cache_policy=NO_CACHE)
def cut_clips(
    lake: Lake, video: VideoMeta, extractor: str, cfg: ClipConfig
) -> list[dict[str, Any]]:
    """The ``clips`` rows of one video: each track's usable runs (``make_clips``)."""
    tracks, frames, kp = track_keypoints(lake, video.video_id, extractor)
    producer = clip_producer(extractor, cfg)
    rows = []
    for track in np.unique(tracks):
        sel = tracks == track
        for c in make_clips(frames[sel], kp[sel], video.fps, (video.width, video.height), cfg):
            rows.append(_clip_row(video, producer, int(track), c))
    return rows


def _clip_row(video: VideoMeta, producer: str, track: int, c: Clip2D) -> dict[str, Any]:
    key = f"{video.video_id}|{producer}|{track}|{c.frame_start}|{c.frame_end}"
    k = c.intrinsics
    return {
        "clip_id": hashlib.sha256(key.encode()).hexdigest()[:16],
        "video_id": video.video_id,
        "extractor": producer,
        "track_id": track,
        "frame_start": c.frame_start,
        "frame_end": c.frame_end,
        "n_frames": len(c.u),
        "fps": c.fps,
        "mean_kp_score": c.mean_score,
        "valid_fraction": c.valid_fraction,
        "filled_frames": c.filled_frames,
        "u": flat(c.u),
        "conf": flat(c.conf),
        "intrinsics": [k.fx, k.fy, k.cx, k.cy, k.width, k.height],
        "caption": video.caption,
        "created_at": utcnow(),
    }


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def write_clips(
    lake: Lake, video_id: str, producer: str, rows: list[dict[str, Any]], flow_run_id: str | None
) -> int:
    """One merge into ``clips``, then the video's marker; returns the clip count."""
    if rows:
        meta = {"flow_run_id": flow_run_id, "video_id": video_id}
        lake.merge("clips", rows_to_table("clips", rows), "clips", meta)
    status = DONE if rows else NO_PERSON
    set_marker(lake, "clips", video_id, producer, status, rows=len(rows), flow_run_id=flow_run_id)
    return len(rows)
