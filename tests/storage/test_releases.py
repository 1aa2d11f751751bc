"""Releases: pinned table versions, immutable names, exactly one winner of a creation race."""

from __future__ import annotations

import subprocess
import sys

import pytest

from videomdm.storage import Lake, run_sql
from videomdm.storage.lake import rows_to_table
from videomdm.storage.releases import (
    PINNED,
    create_release,
    get_release,
    list_releases,
    release_sql,
    release_versions,
)


def _add_video(lake: Lake, vid: str) -> None:
    lake.merge(
        "videos", rows_to_table("videos", [{"video_id": vid, "uri": vid, "status": "ok"}]), "t"
    )


def _add_keypoints(lake: Lake, vid: str, n: int) -> None:
    rows = [{"video_id": vid, "extractor": "e", "track_id": 1, "frame": f} for f in range(n)]
    lake.append("keypoints", rows_to_table("keypoints", rows), "t")


def test_release_pins_every_data_table_and_its_rows(lake_root):
    lake = Lake(lake_root)
    _add_video(lake, "a")
    _add_keypoints(lake, "a", 5)
    r = create_release(lake, "r1", notes="first")
    assert (
        set(r.table_versions)
        == set(PINNED)
        == {
            "videos",
            "keypoints",
            "clips",
            "motions",
            "markers",
        }
    )
    assert r.row_counts["videos"] == 1 and r.row_counts["keypoints"] == 5
    assert r.row_counts["clips"] == 0  # a table never written is pinned empty
    got = get_release(lake, "r1")
    assert got.table_versions == r.table_versions and got.notes == "first"
    assert release_versions(lake, "r1") == r.table_versions


def test_release_reads_never_change_and_names_are_immutable(lake_root):
    lake = Lake(lake_root)
    _add_video(lake, "a")
    _add_keypoints(lake, "a", 5)
    create_release(lake, "r1")
    q = "select (select count(*) from videos) v, (select count(*) from keypoints) k"
    before = release_sql(lake, "r1", q).to_pylist()
    _add_video(lake, "b")
    _add_keypoints(lake, "b", 7)
    assert release_sql(lake, "r1", q).to_pylist() == before == [{"v": 1, "k": 5}]
    assert run_sql(lake, q).to_pylist() == [{"v": 2, "k": 12}]
    with pytest.raises(ValueError, match="'r1' already exists"):
        create_release(lake, "r1")
    assert release_sql(lake, "r1", q).to_pylist() == before
    create_release(lake, "r2")
    assert [r.name for r in list_releases(lake)] == ["r1", "r2"]


@pytest.mark.parametrize("name", ["", "a b", "-x", "x/y", "ü", "a" * 129])
def test_invalid_names_say_what_is_allowed(lake_root, name):
    with pytest.raises(ValueError, match="letters, digits"):
        create_release(Lake(lake_root), name)


def test_unknown_release_lists_the_known_ones(lake_root):
    lake = Lake(lake_root)
    with pytest.raises(ValueError, match="known: none yet"):
        release_versions(lake, "nope")
    create_release(lake, "v1.0")
    with pytest.raises(ValueError, match=r"unknown release 'nope'; known: v1\.0"):
        get_release(lake, "nope")


_RACE = """
import sys, time
from videomdm.storage import Lake
from videomdm.storage.releases import create_release
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
try:
    create_release(Lake(sys.argv[1]), "same")
except ValueError as e:
    print(e)
    sys.exit(3)
"""


def test_concurrent_creation_has_exactly_one_winner(lake_root):
    import time

    Lake(lake_root).ensure("releases")
    start = str(time.time() + 3.0)  # all start together, after their imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, lake_root, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 3, 3, 3], outs
    assert all("already exists" in o for p, o in zip(procs, outs, strict=True) if p.returncode == 3)
    rows = run_sql(Lake(lake_root), "select name from releases").to_pylist()
    assert rows == [{"name": "same"}]
