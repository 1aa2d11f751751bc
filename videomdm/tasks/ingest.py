"""Ingest tasks: list a source, inspect each video (hash + probe), upsert the videos table."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import posixpath
from dataclasses import dataclass
from typing import Any

import fsspec
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.models.perception.video import probe_video
from videomdm.storage import Lake
from videomdm.storage.catalog import KnownVideo, known_videos
from videomdm.storage.lake import rows_to_table, utcnow
from videomdm.storage.sources import (
    SourceFile,
    file_exists,
    list_videos,
    read_caption,
    sha256_file,
)
from videomdm.tasks.retry import transient_only

log = logging.getLogger(__name__)

# Columns compared to decide whether an upsert would change anything.
_COMPARED = ("uri", "collection", "size_bytes", "mtime", "status", "error", "caption")


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def list_source(source: str) -> list[SourceFile]:
    """Video files under the source (file systems and object stores can fail transiently)."""
    return list_videos(source)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def load_known(lake: Lake) -> dict[str, KnownVideo]:
    """Rows already in ``videos``, by uri."""
    return known_videos(lake)


@task(cache_policy=NO_CACHE)
def inspect_video(f: SourceFile, collection: str, flow_run_id: str | None) -> dict[str, Any]:
    """One ``videos`` row: content hash, probe and caption. Never raises: errors become data."""
    row: dict[str, Any] = {
        "uri": f.uri,
        "collection": collection,
        "filename": posixpath.basename(f.uri),
        "size_bytes": f.size,
        "mtime": f.mtime,
        "ingested_at": utcnow(),
        "flow_run_id": flow_run_id,
    }
    try:
        digest = sha256_file(f.uri)
    except OSError as e:  # unreadable: no content hash, so the id derives from the uri
        row.update(video_id="u" + hashlib.sha256(f.uri.encode()).hexdigest()[:15], status="failed")
        row["error"] = f"unreadable: {type(e).__name__}: {e}"
        log.warning("%s: %s", f.uri, row["error"])
        return row
    row.update(video_id=digest[:16], sha256=digest, caption=read_caption(f.uri))
    try:
        fs, path = fsspec.core.url_to_fs(f.uri)
        with fs.open(path, "rb") as fh:
            info = probe_video(path if "file" in fs.protocol else fh)
    except Exception as e:  # noqa: BLE001 - any decoder failure is a property of this file
        row.update(status="failed", error=str(e) or type(e).__name__)
        log.warning("%s: failed: %s", f.uri, row["error"])
        return row
    row.update(status="ok", error=None, **dataclasses.asdict(info))
    return row


@dataclass
class IngestCounts:
    new: int = 0
    updated: int = 0
    duplicates: int = 0


@task(
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def write_videos(lake: Lake, rows: list[dict[str, Any]], flow_run_id: str | None) -> IngestCounts:
    """Upsert the ``videos`` rows that change something, in one commit."""
    existing = {r["video_id"]: r for r in lake.read("videos").to_pylist()}
    changes: dict[str, dict[str, Any]] = {}
    counts = IngestCounts()
    for row in sorted(rows, key=lambda r: r["uri"]):
        old = existing.get(row["video_id"]) or changes.get(row["video_id"])
        if old is not None and old["uri"] != row["uri"] and file_exists(old["uri"]):
            counts.duplicates += 1  # same bytes at two uris: keep the first, not a move
            log.info("%s has the same content as %s; kept the latter", row["uri"], old["uri"])
            continue
        if old is not None and all(old.get(c) == row.get(c) for c in _COMPARED):
            continue
        if row["video_id"] in existing:
            counts.updated += 1
        else:
            counts.new += 1
        changes[row["video_id"]] = row
    if changes:
        lake.merge(
            "videos",
            rows_to_table("videos", list(changes.values())),
            operation="ingest",
            metadata={"flow_run_id": flow_run_id, "rows": len(changes)},
        )
    return counts
