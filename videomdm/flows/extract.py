"""Extract flow: detect, track and estimate 2D keypoints for every video not yet extracted."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from videomdm.config import get_settings
from videomdm.flows.context import flow_run_id
from videomdm.flows.runners import task_resources
from videomdm.models.perception.config import PerceptionConfig
from videomdm.progress import progress_bar
from videomdm.storage import Lake, open_lake
from videomdm.storage.catalog import VideoJob
from videomdm.storage.markers import FAILED
from videomdm.tasks.extract import (
    VideoResult,
    extract_video,
    record_failure,
    resolve_extractor,
    videos_to_extract,
)

log = logging.getLogger(__name__)


@dataclass
class ExtractSummary:
    extractor: str
    results: list[VideoResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)


@flow(name="extract-keypoints", task_runner=ThreadPoolTaskRunner(max_workers=2))  # type: ignore[arg-type]  # Prefect 3.8 stubs
def extract_flow(
    collection: str | None = None,
    pose: str = "yolo-pose",
    device: str | None = None,
    lake: str | None = None,
    max_videos: int | None = None,
) -> ExtractSummary:
    """Keypoints for each ingested video lacking them; a failed video is recorded, others go on.

    Videos run in parallel on the flow's task runner: two threads by default, a Ray cluster
    with ``extract_flow.with_options(task_runner=make_task_runner("ray", ...))``."""
    s = get_settings()
    lk, run_id, weights = open_lake(lake), flow_run_id(), s.weights_source()
    cfg = PerceptionConfig(pose=pose, detector="yolo-pose", device=device or s.resolved_device())  # type: ignore[arg-type]
    extractor = resolve_extractor(cfg, weights)
    jobs = videos_to_extract(lk, extractor, collection)[:max_videos]
    summary = ExtractSummary(extractor)
    with progress_bar("extract", total=len(jobs)) as advance:
        with task_resources(gpu=cfg.device.startswith(("cuda", "tensorrt"))):
            futures = extract_video.map(
                lake=unmapped(lk),
                job=jobs,
                cfg=unmapped(cfg),
                extractor=unmapped(extractor),
                weights=unmapped(weights),
                flow_run_id=unmapped(run_id),
            )
        by_future = dict(zip(futures, jobs, strict=True))
        for fut in as_completed(futures):
            summary.results.append(_result(fut, by_future[fut], lk, extractor, run_id))
            advance(1)
    create_table_artifact(
        key="extract-summary",
        table=[vars(r) for r in summary.results] or [{"videos": 0}],
        description=f"Keypoints by `{extractor}`",
    )
    return summary


def _result(
    fut: PrefectFuture[VideoResult], job: VideoJob, lake: Lake, extractor: str, run_id: str | None
) -> VideoResult:
    """The task's result, or, when it failed after its retries, a recorded failure."""
    try:
        return fut.result()
    except Exception as e:  # noqa: BLE001 - one video's failure must not stop the others
        error = f"{type(e).__name__}: {e}"
    log.warning("%s: extraction failed: %s", job.uri, error)
    record_failure(lake, job, extractor, error, run_id)
    return VideoResult(job.video_id, FAILED, error=error)
