"""Clip tasks: which videos still need clips, and one video's tracks cut into clips."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import posixpath
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.models.motion.calibration import (
    CameraModel,
    camera_for,
    load_calibration,
    parse_calibration,
)
from videomdm.models.motion.clips import Clip2D, ClipConfig, make_clips
from videomdm.storage import Lake
from videomdm.storage.catalog import VideoMeta, track_keypoints, videos_needing
from videomdm.storage.codecs import flat
from videomdm.storage.lake import rows_to_table, utcnow
from videomdm.storage.markers import DONE, NO_PERSON, set_marker
from videomdm.storage.sources import read_intrinsics_sidecar
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
def read_intrinsics(path: str) -> dict[str, CameraModel]:
    """The cameras of an intrinsics (or calibration) file given by the user."""
    return load_calibration(path)


def video_camera(
    video: VideoMeta, given: dict[str, CameraModel] | None
) -> tuple[CameraModel | None, str]:
    """The video's known camera and where it came from: ``given`` (``--intrinsics``: the
    camera named like the video, or its only one), else its sidecar (``read_intrinsics_sidecar``),
    else none (the default field of view)."""
    name = posixpath.basename(video.uri)
    if given and (cam := camera_for(given, name)) is not None:
        return cam, "--intrinsics"
    side = read_intrinsics_sidecar(video.uri) if video.uri else None
    if side is not None:
        cam = camera_for(parse_calibration(side[1], side[0]), name)
        if cam is not None:
            return cam, side[0]
    return None, "default field of view"


@task(cache_policy=NO_CACHE)
def cut_clips(
    lake: Lake,
    video: VideoMeta,
    extractor: str,
    cfg: ClipConfig,
    intrinsics: dict[str, CameraModel] | None = None,
) -> list[dict[str, Any]]:
    """The ``clips`` rows of one video: each track's usable runs (``make_clips``), through
    the video's known camera (``video_camera``) when it has one."""
    tracks, frames, kp = track_keypoints(lake, video.video_id, extractor)
    producer = clip_producer(extractor, cfg)
    camera, source = video_camera(video, intrinsics)
    log.info("%s: camera from %s", video.uri or video.video_id, source)
    size = (video.width, video.height)
    rows = []
    for track in np.unique(tracks):
        sel = tracks == track
        for c in make_clips(frames[sel], kp[sel], video.fps, size, cfg, camera=camera):
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
