"""Ingest flow: a video collection into the ``videos`` table, incrementally and idempotently."""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from videomdm.config import get_settings
from videomdm.progress import progress_bar
from videomdm.tasks.ingest import inspect_video, is_unchanged, list_source, load_known, write_videos

log = logging.getLogger(__name__)


@flow(name="ingest-collection", task_runner=ThreadPoolTaskRunner(max_workers=4))  # type: ignore[arg-type]  # Prefect 3.8 stubs
def ingest_flow(
    source: str,
    collection: str,
    lake: str | None = None,
    storage_options: dict[str, str] | None = None,
    commit_every: int = 64,
) -> dict[str, Any]:
    """Hash, probe and upsert every video under ``source``; returns counts per outcome."""
    if lake is None:
        lake, storage_options = (
            get_settings().lake,
            storage_options or get_settings().storage_options,
        )
    run_id = str(flow_run.id) if flow_run.id else None
    files = list_source(source)
    known = load_known(lake, storage_options)
    todo = [f for f in files if not is_unchanged(f, known, collection)]
    summary: dict[str, Any] = {
        "files": len(files),
        "unchanged": len(files) - len(todo),
        "new": 0,
        "updated": 0,
        "duplicates": 0,
        "failed": 0,
    }
    failures: list[dict[str, str]] = []
    with progress_bar("ingest", total=len(todo)) as advance:
        # commit in chunks so an interrupted run keeps what it finished
        for start in range(0, len(todo), commit_every):
            chunk = todo[start : start + commit_every]
            futures = inspect_video.map(
                chunk, collection=unmapped(collection), flow_run_id=unmapped(run_id)
            )
            rows = []
            for fut in as_completed(futures):
                rows.append(fut.result())
                advance(1)
            failures += [
                {"uri": r["uri"], "error": r["error"]} for r in rows if r["status"] == "failed"
            ]
            counts = write_videos(lake, rows, run_id, storage_options)
            for k, v in counts.items():
                summary[k] += v
    summary["failed"] = len(failures)
    summary["failures"] = failures
    _artifact(collection, summary)
    return summary


def _artifact(collection: str, summary: dict[str, Any]) -> None:
    table = [{"outcome": k, "count": v} for k, v in summary.items() if isinstance(v, int)]
    create_table_artifact(
        key="ingest-summary", table=table, description=f"Ingest of collection `{collection}`"
    )
