"""The lake on a real S3-compatible server (moto's, on 127.0.0.1): tables, time travel, DuckDB
and the object-store lock, with the storage options as the only configuration."""

from __future__ import annotations

import threading
import time
import uuid

import pyarrow as pa

from videomdm.storage import Lake, run_sql
from videomdm.storage.lake import rows_to_table
from videomdm.storage.objectstore import object_lock


def _lake(s3_server) -> Lake:
    options, _ = s3_server
    return Lake(f"s3://videomdm/{uuid.uuid4().hex[:8]}", options)


def _video(i: int) -> dict:
    return dict(video_id=f"v{i}", uri=f"s3://videomdm/videos/{i}.mp4", collection="c", status="ok")


def test_tables_versions_and_duckdb_on_s3(s3_server):
    lake = _lake(s3_server)
    lake.merge("videos", rows_to_table("videos", [_video(1)]), "test")
    lake.merge("videos", rows_to_table("videos", [_video(2), _video(1)]), "test")
    assert lake.version("videos") == 2 and lake.info("videos").rows == 2
    assert lake.files("videos")[0].startswith("s3://videomdm/")
    now = run_sql(lake, "select video_id from videos where video_id = 'v2'").to_pylist()
    assert now == [{"video_id": "v2"}]  # a string filter on an object-store table
    past = run_sql(lake, "select count(*) as n from videos", at={"videos": 1}).to_pylist()
    assert past == [{"n": 1}]


def test_concurrent_inserts_of_one_key_land_once(s3_server):
    """The table lock (a lock object created only if absent) makes insert_new check-and-insert
    on an object store too: of four writers of the same new key exactly one inserts it."""
    lake = _lake(s3_server)
    lake.ensure("releases")
    row = rows_to_table("releases", [dict(name="r1", notes="x")])
    inserted: list[int] = []
    threads = [
        threading.Thread(target=lambda: inserted.append(lake.insert_new("releases", row, "t")))
        for _ in range(4)
    ]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(inserted) == [0, 0, 0, 1]
    assert lake.read("releases").num_rows == 1


def test_object_lock_is_exclusive_and_released(s3_server):
    options, _ = s3_server
    _lake(s3_server)  # configures fsspec from the options
    uri = f"s3://videomdm/locks/{uuid.uuid4().hex}.lock"
    inside, overlaps = [], []

    def hold() -> None:
        with object_lock(uri, poll_s=0.05):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            time.sleep(0.2)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert overlaps == []
    with object_lock(uri):  # released: free again at once
        pass


def test_a_dead_holders_lock_expires(s3_server):
    _lake(s3_server)
    import fsspec

    uri = f"s3://videomdm/locks/{uuid.uuid4().hex}.lock"
    fs, path = fsspec.core.url_to_fs(uri)
    fs.pipe(path, b"a holder that died")
    t = time.monotonic()
    with object_lock(uri, ttl_s=0.0, poll_s=0.05):
        pass
    assert time.monotonic() - t < 10 and not fs.exists(path)


def test_arrow_strings_survive_the_view_schema(s3_server):
    lake = _lake(s3_server)
    rows = [dict(_video(1), caption="a person walks")]
    lake.merge("videos", pa.Table.from_pylist(rows), "test")
    out = run_sql(lake, "select caption from videos where caption like '%walks'").to_pylist()
    assert out == [{"caption": "a person walks"}]
