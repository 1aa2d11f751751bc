"""Extraction tasks: which videos still need keypoints, and one video's keypoints into the lake."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from videomdm.models.perception.config import PerceptionConfig
from videomdm.models.perception.detection import providers_for
from videomdm.models.perception.pipeline import (
    PersonFrames,
    StageTimes,
    extractor_id,
    run_perception,
)
from videomdm.models.perception.video import VideoDecodeError
from videomdm.models.perception.weights import WeightsSource
from videomdm.storage import Lake
from videomdm.storage.catalog import VideoJob, pending_videos
from videomdm.storage.codecs import keypoint_table
from videomdm.storage.markers import (
    DONE,
    FAILED,
    NO_PERSON,
    TOO_SHORT,
    append_item,
    claim,
    clear_unmarked,
    set_marker,
)
from videomdm.storage.sources import local_path
from videomdm.tasks.retry import transient_only

log = logging.getLogger(__name__)

GPU_SLOT = "videomdm-gpu"  # a global concurrency limit; create it to cap GPU jobs per server


@dataclass(frozen=True)
class VideoResult:
    """What extraction made of one video."""

    video_id: str
    status: str  # done | no_person | too_short | failed
    rows: int = 0
    error: str | None = None


@task(cache_policy=NO_CACHE)
def resolve_extractor(cfg: PerceptionConfig, weights: WeightsSource) -> str:
    """The extractor id: model file hashes plus the settings that change results. A device that
    cannot run fails here, before any video is touched."""
    providers_for(cfg.device)
    return extractor_id(cfg, weights)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def videos_to_extract(lake: Lake, extractor: str, collection: str | None) -> list[VideoJob]:
    """Ingested, decodable videos with no finished marker for this extractor."""
    return pending_videos(lake, extractor, collection)


@task(
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def extract_video(
    lake: Lake,
    job: VideoJob,
    cfg: PerceptionConfig,
    extractor: str,
    weights: WeightsSource,
    flow_run_id: str | None,
) -> VideoResult:
    """Keypoints of one video streamed into one append commit, then its marker. Re-running is
    safe, and so is a second run at the same time (it waits for the video, then finds it
    finished)."""
    with claim(lake, "keypoints", job.video_id, extractor) as finished:
        if finished is not None:
            log.info("%s: already %s by a concurrent run", job.uri, finished.status)
            return VideoResult(job.video_id, finished.status)
        clear_unmarked(lake, "keypoints", "video_id", job.video_id, "extractor", extractor)
        meta = {"flow_run_id": flow_run_id, "video_id": job.video_id, "extractor": extractor}
        gpu = cfg.device.startswith(("cuda", "tensorrt"))
        slot = concurrency(GPU_SLOT, occupy=1) if gpu else contextlib.nullcontext()
        try:
            with local_path(job.uri) as path, slot:
                stats = StageTimes()
                people = run_perception(path, cfg, weights, stats=stats)
                rows, version = append_item(
                    lake, "keypoints", _tables(people, job.video_id, extractor), "extract", meta
                )
        except VideoDecodeError as e:  # a property of the file: record it, do not retry
            log.warning("%s: %s", job.uri, e)
            set_marker(
                lake,
                "keypoints",
                job.video_id,
                extractor,
                FAILED,
                error=str(e),
                flow_run_id=flow_run_id,
            )
            return VideoResult(job.video_id, FAILED, error=str(e))
        status = DONE if rows else TOO_SHORT if stats.tracked_rows else NO_PERSON
        if status == TOO_SHORT:
            log.info(
                "%s: %d person rows tracked, no track of %d+ frames",
                job.uri,
                stats.tracked_rows,
                cfg.min_track_len,
            )
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
        return VideoResult(job.video_id, status, rows)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def record_failure(
    lake: Lake, job: VideoJob, extractor: str, error: str, flow_run_id: str | None
) -> None:
    """Mark a video whose extraction failed after its retries, with the reason."""
    set_marker(
        lake, "keypoints", job.video_id, extractor, FAILED, error=error, flow_run_id=flow_run_id
    )


def _tables(people: Iterator[PersonFrames], video_id: str, extractor: str) -> Iterator[pa.Table]:
    for pf in people:
        yield keypoint_table(pf, video_id, extractor)
