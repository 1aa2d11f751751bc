"""Extract flow: detect, track and estimate 2D keypoints for every video not yet extracted."""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from videomdm.config import get_settings
from videomdm.flows.runners import task_resources
from videomdm.models.perception.pipeline import PerceptionConfig
from videomdm.progress import progress_bar
from videomdm.tasks.extract import extract_video, pending_videos, record_failure, resolve_extractor

log = logging.getLogger(__name__)


@flow(name="extract-keypoints", task_runner=ThreadPoolTaskRunner(max_workers=2))  # type: ignore[arg-type]  # Prefect 3.8 stubs
def extract_flow(
    collection: str | None = None,
    pose: str = "yolo-pose",
    device: str | None = None,
    lake: str | None = None,
    weights_dir: str | None = None,
    storage_options: dict[str, str] | None = None,
    max_videos: int | None = None,
) -> dict[str, Any]:
    """Keypoints for each ingested video lacking them; a failed video is recorded, others go on.

    Videos run in parallel on the flow's task runner: two threads by default, a Ray cluster
    with ``extract_flow.with_options(task_runner=make_task_runner("ray", ...))``."""
    s = get_settings()
    lake = lake or s.lake
    storage_options = storage_options or s.storage_options
    weights_dir = weights_dir or (str(s.weights_dir) if s.weights_dir else None)
    cfg = PerceptionConfig(pose=pose, detector="yolo-pose", device=device or s.resolved_device())
    run_id = str(flow_run.id) if flow_run.id else None
    extractor = resolve_extractor(cfg, weights_dir)
    jobs = pending_videos(lake, extractor, collection, storage_options)[:max_videos]
    summary: dict[str, Any] = {
        "extractor": extractor,
        "videos": len(jobs),
        "done": 0,
        "no_person": 0,
        "failed": 0,
        "rows": 0,
        "results": [],
    }
    with progress_bar("extract", total=len(jobs)) as advance:
        with task_resources(gpu=cfg.device.startswith(("cuda", "tensorrt"))):
            futures = extract_video.map(
                lake_root=unmapped(lake),
                job=jobs,
                cfg=unmapped(cfg),
                extractor=unmapped(extractor),
                weights_dir=unmapped(weights_dir),
                flow_run_id=unmapped(run_id),
                storage_options=unmapped(storage_options),
            )
        by_future = dict(zip(futures, jobs, strict=True))
        for fut in as_completed(futures):
            result = _result(fut, by_future[fut], lake, extractor, run_id, storage_options)
            summary[result["status"]] += 1
            summary["rows"] += result["rows"]
            summary["results"].append(result)
            advance(1)
    create_table_artifact(
        key="extract-summary",
        table=summary["results"] or [{"videos": 0}],
        description=f"Keypoints by `{extractor}`",
    )
    return summary


def _result(fut, job, lake, extractor, run_id, storage_options) -> dict[str, Any]:
    """The task's result, or, when it failed after its retries, a recorded failure."""
    try:
        return fut.result()
    except Exception as e:  # noqa: BLE001 - one video's failure must not stop the others
        error = f"{type(e).__name__}: {e}"
    log.warning("%s: extraction failed: %s", job.uri, error)
    record_failure(lake, job, extractor, error, run_id, storage_options)
    return {"video_id": job.video_id, "status": "failed", "rows": 0, "error": error}
