"""Motion-data tasks: clips from keypoints, lifted motions, lifter runs and checkpoints."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.models.lifter.network import (
    camera_to_world,
    lift_many,
    load_checkpoint,
    save_checkpoint,
)
from videomdm.models.motion.clips import ClipConfig, make_clips
from videomdm.storage import Lake, run_sql
from videomdm.storage.lake import rows_to_table, utcnow
from videomdm.storage.markers import (
    DONE,
    FINISHED,
    NO_PERSON,
    append_item,
    claim,
    clear_unmarked,
    markers,
    set_marker,
)
from videomdm.storage.sources import local_path
from videomdm.tasks.extract import keypoint_arrays

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoMeta:
    video_id: str
    width: int  # upright frame size, as the keypoints are
    height: int
    fps: float
    caption: str | None


def clip_producer(extractor: str, cfg: ClipConfig) -> str:
    """Clips depend on the keypoints' extractor and on the clip settings."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode()).hexdigest()
    return f"{extractor}/clips-{h[:8]}"


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def videos_needing(
    lake_root: str, table: str, upstream: str, producer: str, collection: str | None = None
) -> list[VideoMeta]:
    """Videos whose ``upstream`` output (a keypoints extractor or a clip producer) is finished
    and which have no finished ``table`` marker from ``producer`` yet."""
    lake = Lake(lake_root)
    up_table = "keypoints" if table == "clips" else "clips"
    ready = {k[0] for k, m in markers(lake, up_table, upstream).items() if m.status == DONE}
    done = {k[0] for k, m in markers(lake, table, producer).items() if m.status in FINISHED}
    rows = lake.read("videos").to_pylist()
    return [
        VideoMeta(r["video_id"], *(_upright(r)), r["fps"], r["caption"])
        for r in rows
        if r["video_id"] in ready
        and r["video_id"] not in done
        and (collection is None or r["collection"] == collection)
    ]


def _upright(r: dict[str, Any]) -> tuple[int, int]:
    w, h = r["width"], r["height"]
    return (h, w) if (r["rotation"] or 0) % 180 == 90 else (w, h)


def _flat(a: np.ndarray) -> list[float]:
    return np.asarray(a, np.float32).reshape(-1).tolist()


@task(cache_policy=NO_CACHE)
def clips_for_video(
    lake_root: str, video: VideoMeta, extractor: str, cfg: ClipConfig, flow_run_id: str | None
) -> int:
    """Cut one video's tracks into clips; one merge into ``clips``, then its marker."""
    lake = Lake(lake_root)
    t = run_sql(
        lake,
        "select track_id, frame, kp_x, kp_y, kp_score from keypoints "
        "where video_id = ? and extractor = ? order by track_id, frame",
        params=[video.video_id, extractor],
    )
    producer = clip_producer(extractor, cfg)
    tracks = t.column("track_id").to_numpy()
    frames = t.column("frame").to_numpy()
    kp = keypoint_arrays(t)  # (R, 17, 3)
    rows = []
    for track in np.unique(tracks):
        sel = tracks == track
        for c in make_clips(frames[sel], kp[sel], video.fps, (video.width, video.height), cfg):
            cid = hashlib.sha256(
                f"{video.video_id}|{producer}|{track}|{c.frame_start}|{c.frame_end}".encode()
            ).hexdigest()[:16]
            k = c.intrinsics
            rows.append(
                dict(
                    clip_id=cid,
                    video_id=video.video_id,
                    extractor=producer,
                    track_id=int(track),
                    frame_start=c.frame_start,
                    frame_end=c.frame_end,
                    n_frames=len(c.u),
                    fps=c.fps,
                    mean_kp_score=c.mean_score,
                    valid_fraction=c.valid_fraction,
                    filled_frames=c.filled_frames,
                    u=_flat(c.u),
                    conf=_flat(c.conf),
                    intrinsics=[k.fx, k.fy, k.cx, k.cy, k.width, k.height],
                    caption=video.caption,
                    created_at=utcnow(),
                )
            )
    if rows:
        lake.merge(
            "clips",
            rows_to_table("clips", rows),
            "clips",
            {"flow_run_id": flow_run_id, "video_id": video.video_id},
        )
    set_marker(
        lake,
        "clips",
        video.video_id,
        producer,
        DONE if rows else NO_PERSON,
        rows=len(rows),
        flow_run_id=flow_run_id,
    )
    return len(rows)


@task(cache_policy=NO_CACHE)
def lift_video(
    lake_root: str,
    video_id: str,
    clip_prod: str,
    checkpoint: str,
    lifter_id: str,
    flow_run_id: str | None,
) -> int:
    """Lift every clip of one video: one append into ``motions``, then its marker."""
    lake = Lake(lake_root)
    with claim(lake, "motions", video_id, lifter_id) as finished:
        if finished is not None:
            log.info("%s: already lifted by a concurrent run", video_id)
            return 0
        return _lift(lake, video_id, clip_prod, checkpoint, lifter_id, flow_run_id)


def _lift(
    lake: Lake,
    video_id: str,
    clip_prod: str,
    checkpoint: str,
    lifter_id: str,
    flow_run_id: str | None,
) -> int:
    clear_unmarked(lake, "motions", "video_id", video_id, "lifter_id", lifter_id)
    t = run_sql(
        lake,
        "select clip_id, n_frames, fps, u, conf, intrinsics from clips "
        "where video_id = ? and extractor = ? order by clip_id",
        params=[video_id, clip_prod],
    )
    clips = t.to_pylist()
    with local_path(checkpoint) as path:
        model, _, _ = load_checkpoint(path)
    us = [np.asarray(c["u"], np.float32).reshape(-1, 17, 2) for c in clips]
    confs = [np.asarray(c["conf"], np.float32).reshape(-1, 17) for c in clips]
    rows = []
    for c, cam in zip(clips, lift_many(model, us, confs), strict=True):
        world, R, tr = camera_to_world(cam)  # noqa: N806
        rows.append(
            dict(
                clip_id=c["clip_id"],
                lifter_id=lifter_id,
                video_id=video_id,
                n_frames=c["n_frames"],
                fps=c["fps"],
                joints=_flat(world),
                cam_R=_flat(R),
                cam_t=_flat(tr),
                intrinsics=list(c["intrinsics"]),
                created_at=utcnow(),
            )
        )
    meta = {"flow_run_id": flow_run_id, "video_id": video_id, "lifter_id": lifter_id}
    n, version = append_item(lake, "motions", [rows_to_table("motions", rows)], "lift", meta)
    set_marker(
        lake,
        "motions",
        video_id,
        lifter_id,
        DONE if n else NO_PERSON,
        rows=n,
        data_version=version,
        flow_run_id=flow_run_id,
    )
    return n


# -- lifter runs and checkpoints -----------------------------------------------------------


def checkpoint_uri(lake_root: str, kind: str, run_id: str) -> str:
    """Checkpoints live beside the tables, so an object-store lake keeps them too."""
    return f"{lake_root.rstrip('/')}/checkpoints/{kind}/{run_id}.pt"


def store_checkpoint(local: str, uri: str) -> str:
    fs, path = fsspec.core.url_to_fs(uri)
    fs.makedirs(str(Path(path).parent), exist_ok=True)
    fs.put(local, path)
    return uri


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def record_run(lake_root: str, row: dict[str, Any]) -> None:
    """Upsert one ``runs`` row (config and metrics as JSON)."""
    row = dict(row)
    for k in ("config_json", "metrics_json"):
        if not isinstance(row.get(k), str | None):
            row[k] = json.dumps(row[k], default=float)
    Lake(lake_root).merge(
        "runs", rows_to_table("runs", [row]), f"run.{row.get('kind')}", {"run_id": row["run_id"]}
    )


def latest_run(lake_root: str, kind: str) -> dict[str, Any] | None:
    """The newest finished run of ``kind`` (e.g. ``train-lifter``), or None."""
    t = run_sql(
        Lake(lake_root),
        "select * from runs where kind = ? and status = 'ok' order by finished_at desc limit 1",
        params=[kind],
    )
    return t.to_pylist()[0] if t.num_rows else None


def lifter_id_of(run: dict[str, Any]) -> str:
    return f"lifter-{run['run_id']}"


def save_lifter(model, cfg, lake_root: str, run_id: str, extra: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        local = str(Path(tmp) / "lifter.pt")
        save_checkpoint(local, model, cfg, extra)
        root = Lake(lake_root).root  # absolute for a local lake: runs rows outlive the cwd
        return store_checkpoint(local, checkpoint_uri(root, "lifter", run_id))
