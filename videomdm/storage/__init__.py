"""The lake: Delta tables, idempotent writes, DuckDB queries. Never imports torch."""

from __future__ import annotations

import duckdb

from videomdm.storage.lake import Lake, TableInfo
from videomdm.storage.query import ReadOnlyError, run_sql
from videomdm.storage.schemas import TABLES, spec

__all__ = [
    "Lake",
    "TableInfo",
    "ReadOnlyError",
    "TABLES",
    "connect",
    "open_lake",
    "run_sql",
    "spec",
]


def open_lake(root: str | None = None) -> Lake:
    """The lake at ``root`` (default: ``VIDEOMDM_LAKE``) with the settings' storage options and
    user: what every flow opens once and hands to its tasks."""
    from videomdm.config import get_settings

    s = get_settings()
    return Lake(root or s.lake, s.storage_options, user=s.user)


def connect(root: str | None = None, at: dict[str, int] | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB with every lake table as a view (optionally pinned to past versions)."""
    from videomdm.storage.query import connect as _connect

    return _connect(open_lake(root), at)
