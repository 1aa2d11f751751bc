"""The lake: idempotent merges, appends, versions, DuckDB views and the read-only guard."""

from __future__ import annotations

import pytest

from videomdm.storage import Lake, ReadOnlyError, run_sql
from videomdm.storage.lake import rows_to_table
from videomdm.storage.schemas import TABLES


def _video(vid: str, uri: str) -> dict:
    return {"video_id": vid, "uri": uri, "status": "ok"}


def test_all_six_design_tables_are_declared():
    assert {"videos", "keypoints", "clips", "motions", "releases", "runs"} <= set(TABLES)
    assert TABLES["keypoints"].big and TABLES["motions"].big
    assert not TABLES["videos"].big


def test_merge_is_idempotent_and_one_commit_each(lake_root):
    lake = Lake(lake_root)
    rows = rows_to_table("videos", [_video("a", "/x/a.mp4"), _video("b", "/x/b.mp4")])
    v1 = lake.merge("videos", rows, "test")
    v2 = lake.merge("videos", rows, "test")
    assert v2 == v1 + 1
    assert lake.info("videos").rows == 2
    hist = lake.table("videos").history(1)[0]
    assert hist["videomdm.operation"] == "test"


def test_merge_updates_by_key(lake_root):
    lake = Lake(lake_root)
    lake.merge("videos", rows_to_table("videos", [_video("a", "/old.mp4")]), "test")
    lake.merge("videos", rows_to_table("videos", [_video("a", "/new.mp4")]), "test")
    assert run_sql(lake, "select uri from videos").to_pylist() == [{"uri": "/new.mp4"}]


def test_big_tables_refuse_merge(lake_root):
    with pytest.raises(ValueError, match="big table"):
        Lake(lake_root).merge("keypoints", rows_to_table("keypoints", []), "test")


def test_query_at_earlier_version_returns_earlier_rows(lake_root):
    lake = Lake(lake_root)
    lake.merge("videos", rows_to_table("videos", [_video("a", "/a.mp4")]), "test")
    first = lake.version("videos")
    lake.merge("videos", rows_to_table("videos", [_video("b", "/b.mp4")]), "test")
    q = "select count(*) as n from videos"
    assert run_sql(lake, q).to_pylist() == [{"n": 2}]
    assert run_sql(lake, q, at={"videos": first}).to_pylist() == [{"n": 1}]


def test_fixed_size_lists_come_back_as_arrays(lake_root):
    lake = Lake(lake_root)
    row = {
        "video_id": "a",
        "extractor": "e",
        "track_id": 1,
        "frame": 0,
        "bbox": [1, 2, 3, 4],
        "kp_x": [float(i) for i in range(17)],
        "kp_y": [0.0] * 17,
        "kp_score": [1.0] * 17,
    }
    lake.append("keypoints", rows_to_table("keypoints", [row]), "test")
    out = run_sql(lake, "select kp_x[17] as last, typeof(kp_x) as ty from keypoints").to_pylist()
    assert out == [{"last": 16.0, "ty": "FLOAT[17]"}]


def test_empty_tables_are_queryable(lake_root):
    out = run_sql(Lake(lake_root), "select count(*) as n from motions").to_pylist()
    assert out == [{"n": 0}]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM videos",
        "CREATE TABLE x (a INT)",
        "DROP VIEW videos",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "ATTACH 'x.db'",
        "SELECT 1; DELETE FROM videos",
    ],
)
def test_sql_refuses_writes(lake_root, sql):
    with pytest.raises(ReadOnlyError, match="read-only"):
        run_sql(Lake(lake_root), sql)


def test_unknown_table_version_is_a_clear_error(lake_root):
    with pytest.raises(ValueError, match="unknown table"):
        run_sql(Lake(lake_root), "select 1", at={"nope": 1})
