"""Ingest flow: a video collection into the ``videos`` table, incrementally and idempotently."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from videomdm.flows.context import flow_run_id
from videomdm.progress import progress_bar
from videomdm.storage import open_lake
from videomdm.storage.catalog import is_unchanged
from videomdm.tasks.ingest import inspect_video, list_source, load_known, write_videos

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    uri: str
    error: str


@dataclass
class IngestSummary:
    """What one ingest did: files seen, and how many were new, updated, unchanged..."""

    files: int = 0
    unchanged: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)


@flow(name="ingest-collection", task_runner=ThreadPoolTaskRunner(max_workers=4))  # type: ignore[arg-type]  # Prefect 3.8 stubs
def ingest_flow(
    source: str, collection: str, lake: str | None = None, commit_every: int = 64
) -> IngestSummary:
    """Hash, probe and upsert every video under ``source``; returns counts per outcome."""
    lk, run_id = open_lake(lake), flow_run_id()
    files = list_source(source)
    known = load_known(lk)
    todo = [f for f in files if not is_unchanged(f, known, collection)]
    summary = IngestSummary(files=len(files), unchanged=len(files) - len(todo))
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
            summary.failures += [
                Failure(r["uri"], r["error"]) for r in rows if r["status"] == "failed"
            ]
            counts = write_videos(lk, rows, run_id)
            summary.new += counts.new
            summary.updated += counts.updated
            summary.duplicates += counts.duplicates
    create_table_artifact(
        key="ingest-summary",
        table=[
            {"outcome": k, "count": getattr(summary, k)}
            for k in ("files", "unchanged", "new", "updated", "duplicates", "failed")
        ],
        description=f"Ingest of collection `{collection}`",
    )
    return summary
