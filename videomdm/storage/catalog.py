"""What the pipeline asks of the lake: which videos a step still has to do, and the rows one
item needs (a video's tracks, its clips, a clip with its motion, the people of each frame).

Each function is one read; the tasks around them decide what to do with the answer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from videomdm.errors import UserError
from videomdm.storage.codecs import keypoint_arrays, list_column
from videomdm.storage.lake import Lake
from videomdm.storage.markers import DONE, FINISHED, latest_producer, markers
from videomdm.storage.query import run_sql
from videomdm.storage.sources import SourceFile

RECONSTRUCT_ID = "videomdm"  # the lifter_id of motions reconstructed by VideoMDM


@dataclass(frozen=True)
class VideoJob:
    """A video to extract."""

    video_id: str
    uri: str


@dataclass(frozen=True)
class VideoMeta:
    """A video to cut into clips or lift: what those steps need of its ``videos`` row."""

    video_id: str
    width: int  # upright frame size, as the keypoints are
    height: int
    fps: float
    caption: str | None
    uri: str = ""  # where its sidecars are (a camera file beside it)


@dataclass(frozen=True)
class KnownVideo:
    """What ingest compares a listed file with."""

    video_id: str
    uri: str
    size: int | None
    mtime: float | None
    collection: str | None
    status: str


People = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # frame -> boxes, kps, track ids


def known_videos(lake: Lake) -> dict[str, KnownVideo]:
    """Rows already in ``videos``, by uri."""
    cols = ["video_id", "uri", "size_bytes", "mtime", "collection", "status"]
    return {
        r["uri"]: KnownVideo(
            r["video_id"], r["uri"], r["size_bytes"], r["mtime"], r["collection"], r["status"]
        )
        for r in lake.read("videos", columns=cols).to_pylist()
    }


def is_unchanged(f: SourceFile, known: dict[str, KnownVideo], collection: str) -> bool:
    """Same uri, size, mtime and collection as a row already ingested: nothing to do."""
    k = known.get(f.uri)
    return (
        k is not None
        and k.size == f.size
        and k.mtime == f.mtime
        and k.collection == collection
        and f.size is not None
    )


def pending_videos(lake: Lake, extractor: str, collection: str | None = None) -> list[VideoJob]:
    """Ingested, decodable videos with no finished marker for this extractor, by uri."""
    done = {k[0] for k, m in markers(lake, "keypoints", extractor).items() if m.status in FINISHED}
    videos = lake.read("videos", columns=["video_id", "uri", "collection", "status"]).to_pylist()
    return [
        VideoJob(v["video_id"], v["uri"])
        for v in sorted(videos, key=lambda v: v["uri"])
        if v["status"] == "ok"
        and v["video_id"] not in done
        and (collection is None or v["collection"] == collection)
    ]


def videos_needing(
    lake: Lake, table: str, upstream: str, producer: str, collection: str | None = None
) -> list[VideoMeta]:
    """Videos whose ``upstream`` output (a keypoints extractor for ``clips``, a clip producer
    for ``motions``) is done and which have no finished ``table`` marker from ``producer``."""
    up_table = "keypoints" if table == "clips" else "clips"
    ready = {k[0] for k, m in markers(lake, up_table, upstream).items() if m.status == DONE}
    done = {k[0] for k, m in markers(lake, table, producer).items() if m.status in FINISHED}
    out = []
    for r in lake.read("videos").to_pylist():
        if r["video_id"] in ready and r["video_id"] not in done:
            if collection is None or r["collection"] == collection:
                w, h = r["width"], r["height"]
                upright = (h, w) if (r["rotation"] or 0) % 180 == 90 else (w, h)
                out.append(VideoMeta(r["video_id"], *upright, r["fps"], r["caption"], r["uri"]))
    return out


def latest_extractor(lake: Lake, video_id: str | None = None) -> str:
    """The extractor that most recently finished this video (or, without one, any video)."""
    if video_id is None:
        found = latest_producer(lake, "keypoints", statuses=(DONE,))
        where = "in the lake; run `videomdm extract` first"
    else:
        found = latest_producer(lake, "keypoints", video_id)
        where = f"for video {video_id}; run `videomdm extract`"
    if found is None:
        raise UserError(f"no extracted keypoints {where}")
    return found


def track_keypoints(
    lake: Lake, video_id: str, extractor: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One video's keypoints by track then frame: track ids ``(R,)``, frames ``(R,)`` and
    ``(R, 17, 3)`` pixels and scores."""
    t = run_sql(
        lake,
        "select track_id, frame, kp_x, kp_y, kp_score from keypoints "
        "where video_id = ? and extractor = ? order by track_id, frame",
        params=[video_id, extractor],
    )
    return t.column("track_id").to_numpy(), t.column("frame").to_numpy(), keypoint_arrays(t)


def video_clips(lake: Lake, video_id: str, producer: str) -> list[dict[str, Any]]:
    """The clips ``producer`` cut from one video, by clip id."""
    return run_sql(
        lake,
        "select clip_id, video_id, n_frames, fps, u, conf, intrinsics from clips "
        "where video_id = ? and extractor = ? order by clip_id",
        params=[video_id, producer],
    ).to_pylist()


def clip_with_motion(
    lake: Lake, clip_id: str, lifter: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A clip row and its lifted motion row (``lifter``'s if it has one, else the newest one
    not reconstructed by VideoMDM); UserError when either is missing."""
    if not re.fullmatch(r"[0-9a-f]{1,64}", clip_id):
        raise UserError(
            f'clip id {clip_id!r} is not a hex id (see `videomdm sql "select clip_id from clips"`)'
        )
    clips = run_sql(lake, "select * from clips where clip_id = ?", params=[clip_id]).to_pylist()
    if not clips:
        raise UserError(f"no clip {clip_id!r} in the lake")
    motions = run_sql(
        lake,
        "select * from motions where clip_id = ? and lifter_id != ? "
        "order by lifter_id = ? desc, created_at desc",
        params=[clip_id, RECONSTRUCT_ID, lifter or ""],
    ).to_pylist()
    if not motions:
        raise UserError(f"clip {clip_id} has no lifted motion (its camera); run `videomdm lift`")
    return clips[0], motions[0]


def video_uri(lake: Lake, video_id: str) -> str:
    t = run_sql(lake, "select uri from videos where video_id = ?", params=[video_id])
    if t.num_rows == 0:
        raise UserError(f"no video with id {video_id!r}; see `videomdm sql 'select * from videos'`")
    return t.column("uri")[0].as_py()


def video_uri_and_fps(lake: Lake, video_id: str) -> tuple[str, float]:
    t = run_sql(lake, "select uri, fps from videos where video_id = ?", params=[video_id])
    if t.num_rows == 0:
        raise UserError(f"no video with id {video_id!r} in the lake")
    row = t.to_pylist()[0]
    return row["uri"], float(row["fps"] or 30.0)


def people_by_frame(lake: Lake, video_id: str, extractor: str) -> People:
    """One video's keypoints grouped by frame: boxes ``(n, 4)``, keypoints ``(n, 17, 3)``
    and track ids ``(n,)`` of the people in it."""
    t = run_sql(
        lake,
        "select frame, track_id, bbox, kp_x, kp_y, kp_score from keypoints "
        "where video_id = ? and extractor = ? order by frame, track_id",
        params=[video_id, extractor],
    )
    frames = t.column("frame").to_numpy()
    ids = t.column("track_id").to_numpy()
    boxes = list_column(t.column("bbox"), 4)
    kp = keypoint_arrays(t)
    rows: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(frames):
        rows[int(f)].append(i)
    return {f: (boxes[ix], kp[ix], ids[ix]) for f, ix in rows.items()}


def reconstructed_rows(lake: Lake, video_id: str) -> int:
    """How many clips of a video have a VideoMDM reconstruction (its marker's row count)."""
    t = run_sql(
        lake,
        "select count(*) as n from motions where video_id = ? and lifter_id = ?",
        params=[video_id, RECONSTRUCT_ID],
    )
    return int(t.column("n")[0].as_py())
