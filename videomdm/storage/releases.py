"""Releases: named, immutable dataset versions.

A release pins the Delta version of every data table (``videos``, ``keypoints``, ``clips``,
``motions`` and the ``markers`` that say which big-table rows are finished) and records their
row counts. Querying with ``at=release_versions(lake, name)`` reads exactly what was there when
it was made, whatever was written since; a training run records the release it used.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from videomdm.errors import UserError
from videomdm.storage.lake import Lake, row_count, rows_to_table, utcnow
from videomdm.storage.query import run_sql
from videomdm.storage.schemas import TABLES

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_NAME = re.compile(NAME_PATTERN)

# The dataset tables; what models made of them (runs, generations) is not part of a release.
# markers first: every marker a release pins then has its rows in the big tables pinned after it
# (a producer commits its rows before their marker).
PINNED = ("markers", "videos", "keypoints", "clips", "motions")
assert set(PINNED) <= set(TABLES)


@dataclass(frozen=True)
class Release:
    """A named dataset version: the table versions it pins and their row counts."""

    name: str
    table_versions: dict[str, int]
    row_counts: dict[str, int]
    notes: str | None
    created_at: datetime | None


def check_name(name: str) -> str:
    """The name itself, or UserError saying what a release name may hold."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(
            f"invalid release name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. samples-2026-11-23)"
        )
    return name


def check_new_name(lake: Lake, name: str) -> str:
    """The name, if valid and not taken yet; else UserError (so callers can fail early)."""
    check_name(name)
    if (old := _find(lake, name)) is not None:
        raise _exists(old)
    return name


def create_release(
    lake: Lake, name: str, notes: str | None = None, flow_run_id: str | None = None
) -> Release:
    """Pin the current version and row count of every data table under ``name``.

    Releases never change: a name that exists raises UserError. Of two processes creating the
    same name at once on a local lake exactly one succeeds (the insert is checked under the
    ``releases`` table's lock).
    """
    check_new_name(lake, name)
    versions: dict[str, int] = {}
    counts: dict[str, int] = {}
    for table in PINNED:
        dt = lake.ensure(table)  # a table not written yet is pinned empty, at version 0
        versions[table], counts[table] = dt.version(), row_count(dt)
    release = Release(name, versions, counts, notes, utcnow())
    meta = {"flow_run_id": flow_run_id, "release": name}
    row = rows_to_table("releases", [asdict(release)])
    if lake.insert_new("releases", row, "release", meta) == 0:
        old = _find(lake, name)
        assert old is not None, "insert_new inserted nothing, so the name exists"
        raise _exists(old)
    return release


def get_release(lake: Lake, name: str) -> Release:
    """The release ``name``; UserError if unknown."""
    found = _find(lake, name)
    if found is None:
        known = [r.name for r in list_releases(lake)]
        raise UserError(
            f"unknown release {name!r}; known: {', '.join(known) if known else 'none yet'} "
            "(create one with `videomdm release NAME`)"
        )
    return found


def release_versions(lake: Lake, name: str) -> dict[str, int]:
    """``{table: version}`` pinned by a release, ready for ``run_sql(..., at=...)``."""
    return dict(get_release(lake, name).table_versions)


def list_releases(lake: Lake) -> list[Release]:
    """Every release, oldest first."""
    rows = lake.read("releases").to_pylist()
    return sorted((_decode(r) for r in rows), key=lambda r: (r.created_at, r.name))


def release_sql(lake: Lake, name: str, sql: str, params: list | None = None):
    """Run read-only SQL over the tables as the release pinned them."""
    return run_sql(lake, sql, at=release_versions(lake, name), params=params)


def _find(lake: Lake, name: str) -> Release | None:
    t = lake.read("releases")
    rows = [r for r in t.to_pylist() if r["name"] == name]
    return _decode(rows[0]) if rows else None


def _decode(row: dict[str, Any]) -> Release:
    """Arrow maps come back as lists of (key, value) pairs."""
    return Release(
        row["name"],
        dict(row.get("table_versions") or {}),
        dict(row.get("row_counts") or {}),
        row.get("notes"),
        row.get("created_at"),
    )


def _exists(old: Release) -> UserError:
    when = old.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") if old.created_at else "?"
    return UserError(
        f"release {old.name!r} already exists (created {when}); releases are immutable: "
        "choose another name"
    )
