"""Big-table writes: one commit per item, nothing on failure, unmarked rows cleared."""

from __future__ import annotations

import pyarrow as pa
import pytest

from videomdm.storage import Lake, run_sql
from videomdm.storage.markers import DONE, append_item, clear_unmarked, markers, set_marker


def _batch(video: str, frames: range) -> pa.Table:
    n = len(frames)
    return pa.table(
        {
            "video_id": [video] * n,
            "extractor": ["e1"] * n,
            "track_id": [1] * n,
            "frame": list(frames),
            "kp_x": [[0.0] * 17] * n,
        }
    )


def test_append_item_streams_many_batches_into_one_commit(lake_root):
    lake = Lake(lake_root)
    rows, version = append_item(
        lake, "keypoints", (_batch("v", range(i, i + 10)) for i in range(0, 50, 10)), "t"
    )
    assert rows == 50
    assert lake.table("keypoints").history(1)[0]["version"] == version
    assert run_sql(lake, "select count(*) n from keypoints").to_pylist() == [{"n": 50}]


def test_failure_mid_item_commits_nothing(lake_root):
    lake = Lake(lake_root)
    append_item(lake, "keypoints", [_batch("a", range(5))], "t")
    before = lake.version("keypoints")

    def crashing():
        yield _batch("b", range(10))
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError, match="decoder died"):
        append_item(lake, "keypoints", crashing(), "t")
    assert lake.version("keypoints") == before
    assert run_sql(lake, "select count(*) n from keypoints where video_id='b'").to_pylist() == [
        {"n": 0}
    ]


def test_no_rows_no_commit(lake_root):
    assert append_item(Lake(lake_root), "keypoints", iter([]), "t") == (0, None)


def test_unmarked_rows_are_cleared_and_marked_kept(lake_root):
    lake = Lake(lake_root)
    append_item(lake, "keypoints", [_batch("a", range(5))], "t")
    set_marker(lake, "keypoints", "a", "e1", DONE, rows=5)
    append_item(lake, "keypoints", [_batch("b", range(7))], "t")  # crash before its marker
    clear_unmarked(lake, "keypoints", "video_id", "b", "extractor", "e1")
    got = run_sql(lake, "select video_id, count(*) n from keypoints group by 1").to_pylist()
    assert got == [{"video_id": "a", "n": 5}]
    assert set(markers(lake, "keypoints")) == {("a", "e1")}
