"""Extraction tasks: which videos still need keypoints, and one video's keypoints into the lake."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from videomdm.models.perception.pipeline import (
    PerceptionConfig,
    PersonFrames,
    extractor_id,
    run_perception,
)
from videomdm.models.perception.video import VideoDecodeError
from videomdm.storage import Lake
from videomdm.storage.markers import (
    DONE,
    FAILED,
    FINISHED,
    NO_PERSON,
    append_item,
    claim,
    clear_unmarked,
    latest_producer,
    markers,
    set_marker,
)
from videomdm.storage.sources import local_path

log = logging.getLogger(__name__)

GPU_SLOT = "videomdm-gpu"  # a global concurrency limit; create it to cap GPU jobs per server


@dataclass(frozen=True)
class VideoJob:
    video_id: str
    uri: str


@task(cache_policy=NO_CACHE)
def resolve_extractor(cfg: PerceptionConfig, weights_dir: str | None) -> str:
    """The extractor id: model file hashes plus the settings that change results."""
    return extractor_id(cfg, weights_dir)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def pending_videos(
    lake_root: str,
    extractor: str,
    collection: str | None = None,
    storage_options: dict[str, str] | None = None,
) -> list[VideoJob]:
    """Ingested, decodable videos with no finished marker for this extractor."""
    lake = Lake(lake_root, storage_options)
    done = {k[0] for k, m in markers(lake, "keypoints", extractor).items() if m.status in FINISHED}
    videos = lake.read("videos", columns=["video_id", "uri", "collection", "status"]).to_pylist()
    return [
        VideoJob(v["video_id"], v["uri"])
        for v in sorted(videos, key=lambda v: v["uri"])
        if v["status"] == "ok"
        and v["video_id"] not in done
        and (collection is None or v["collection"] == collection)
    ]


def latest_extractor(lake: Lake, video_id: str | None = None) -> str:
    """The extractor that most recently finished this video (or, without one, any video)."""
    if video_id is None:
        found = latest_producer(lake, "keypoints", statuses=(DONE,))
        where = "in the lake; run `videomdm extract` first"
    else:
        found = latest_producer(lake, "keypoints", video_id)
        where = f"for video {video_id}; run `videomdm extract`"
    if found is None:
        raise ValueError(f"no extracted keypoints {where}")
    return found


def list_column(col: pa.ChunkedArray, width: int) -> np.ndarray:
    """A list column of equal-length rows as a float32 ``(R, width)`` array, without Python
    objects per row (``to_pylist`` on a long video's keypoints costs seconds)."""
    return pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, width)


def keypoint_arrays(t: pa.Table) -> np.ndarray:
    """``kp_x``, ``kp_y``, ``kp_score`` columns of keypoints rows as ``(R, 17, 3)``."""
    return np.stack([list_column(t.column(c), 17) for c in ("kp_x", "kp_y", "kp_score")], -1)


def keypoint_rows(pf: PersonFrames, video_id: str, extractor: str) -> pa.Table:
    """PersonFrames (numpy columns) as ``keypoints`` rows."""
    n = len(pf)

    def lists(a: np.ndarray) -> pa.ListArray:  # (R, k) -> list<float32> without Python loops
        a = np.ascontiguousarray(a, dtype=np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1]).cast(
            pa.list_(pa.float32())
        )

    return pa.table(
        {
            "video_id": pa.array([video_id] * n, pa.string()),
            "extractor": pa.array([extractor] * n, pa.string()),
            "track_id": pf.track_id.astype(np.int32),
            "frame": pf.frame.astype(np.int32),
            "t": pf.t.astype(np.float64),
            "bbox": lists(pf.bbox),
            "det_score": pf.det_score.astype(np.float32),
            "kp_x": lists(pf.kp[:, :, 0]),
            "kp_y": lists(pf.kp[:, :, 1]),
            "kp_score": lists(pf.kp[:, :, 2]),
        }
    )


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def extract_video(
    lake_root: str,
    job: VideoJob,
    cfg: PerceptionConfig,
    extractor: str,
    weights_dir: str | None,
    flow_run_id: str | None,
    storage_options: dict[str, str] | None = None,
) -> dict[str, object]:
    """Keypoints of one video: one append commit, then its marker. Re-running is safe, and so
    is a second run at the same time (it waits for the video, then finds it finished)."""
    lake = Lake(lake_root, storage_options)
    with claim(lake, "keypoints", job.video_id, extractor) as finished:
        if finished is not None:
            log.info("%s: already %s by a concurrent run", job.uri, finished.status)
            return {"video_id": job.video_id, "status": finished.status, "rows": 0, "error": None}
        return _extract(lake, job, cfg, extractor, weights_dir, flow_run_id)


def _extract(
    lake: Lake,
    job: VideoJob,
    cfg: PerceptionConfig,
    extractor: str,
    weights_dir: str | None,
    flow_run_id: str | None,
) -> dict[str, object]:
    clear_unmarked(lake, "keypoints", "video_id", job.video_id, "extractor", extractor)
    meta = {"flow_run_id": flow_run_id, "video_id": job.video_id, "extractor": extractor}
    gpu = cfg.device.startswith(("cuda", "tensorrt"))
    slot = concurrency(GPU_SLOT, occupy=1) if gpu else contextlib.nullcontext()
    try:
        with local_path(job.uri) as path, slot:
            batches = _rows(run_perception(path, cfg, weights_dir), job.video_id, extractor)
            rows, version = append_item(lake, "keypoints", batches, "extract", meta)
    except VideoDecodeError as e:  # a property of the file: record it, do not retry
        set_marker(
            lake,
            "keypoints",
            job.video_id,
            extractor,
            FAILED,
            error=str(e),
            flow_run_id=flow_run_id,
        )
        log.warning("%s: %s", job.uri, e)
        return {"video_id": job.video_id, "status": FAILED, "rows": 0, "error": str(e)}
    status = DONE if rows else NO_PERSON
    set_marker(
        lake,
        "keypoints",
        job.video_id,
        extractor,
        status,
        rows=rows,
        data_version=version,
        flow_run_id=flow_run_id,
    )
    return {"video_id": job.video_id, "status": status, "rows": rows, "error": None}


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def record_failure(
    lake_root: str,
    job: VideoJob,
    extractor: str,
    error: str,
    flow_run_id: str | None,
    storage_options: dict[str, str] | None = None,
) -> None:
    """Mark a video whose extraction failed after its retries, with the reason."""
    set_marker(
        Lake(lake_root, storage_options),
        "keypoints",
        job.video_id,
        extractor,
        FAILED,
        error=error,
        flow_run_id=flow_run_id,
    )


def _rows(frames: Iterator[PersonFrames], video_id: str, extractor: str) -> Iterator[pa.Table]:
    for pf in frames:
        yield keypoint_rows(pf, video_id, extractor)
