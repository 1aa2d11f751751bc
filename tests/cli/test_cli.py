"""The command line as a user runs it: real processes, real ephemeral Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "videomdm.cli"]


def _run(args, lake, check=True, **env):
    e = {**os.environ, "VIDEOMDM_LAKE": str(lake), **env}
    p = subprocess.run(CLI + args, env=e, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def _sql_json(lake, query, *extra):
    return json.loads(_run(["sql", query, "--format", "json", *extra], lake).stdout)


@pytest.mark.slow
def test_two_concurrent_ingests_leave_no_duplicates(sample_copy, tmp_path):
    lake = tmp_path / "lake"
    env = {**os.environ, "VIDEOMDM_LAKE": str(lake)}
    procs = [
        subprocess.Popen(
            CLI + ["ingest", str(sample_copy), "-c", "same"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    rows = _sql_json(lake, "select video_id, count(*) as n from videos group by 1")
    assert len(rows) == 2 and all(r["n"] == 1 for r in rows)


@pytest.mark.slow
def test_cli_ingest_sql_and_tables(sample_copy, tmp_path):
    lake = tmp_path / "lake"
    (sample_copy / "zero.mp4").write_bytes(b"")
    p = _run(["ingest", str(sample_copy), "--collection", "samples"], lake)
    assert "1 failed" in p.stdout and "3 new" in p.stdout  # a failure still exits 0
    rows = _sql_json(lake, "select filename, status from videos order by filename")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert "videos" in _run(["tables"], lake).stdout
    csv_out = _run(["sql", "select count(*) as n from videos", "--format", "csv"], lake).stdout
    assert csv_out == "n\n3\n"  # plain newlines: ids piped into shell loops carry no \r
    assert _sql_json(lake, "select count(*) as n from videos", "--at", "videos=0") == [{"n": 0}]


def test_sql_refuses_delete_and_create(tmp_path):
    (tmp_path / "lake").mkdir()
    for q in ("DELETE FROM videos", "CREATE TABLE t AS SELECT 1"):
        p = _run(["sql", q], tmp_path / "lake", check=False)
        assert p.returncode == 1
        assert "read-only" in p.stderr


def test_sql_json_keeps_lists_as_arrays(tmp_path):
    from videomdm.storage import Lake
    from videomdm.storage.lake import rows_to_table

    lake = tmp_path / "lake"
    row = {
        "video_id": "a",
        "extractor": "e",
        "track_id": 3,
        "frame": 7,
        "bbox": [1, 2, 3, 4],
        "kp_x": [1.5] * 17,
        "kp_y": [2.5] * 17,
        "kp_score": [0.5] * 17,
    }
    Lake(str(lake)).append("keypoints", rows_to_table("keypoints", [row]), "test")
    out = _sql_json(lake, "select track_id, bbox, kp_x from keypoints")
    assert out == [{"track_id": 3, "bbox": [1.0, 2.0, 3.0, 4.0], "kp_x": [1.5] * 17}]


def test_bad_at_and_bad_setting_give_one_clear_message(tmp_path):
    p = _run(["sql", "select 1", "--at", "videos"], tmp_path / "lake", check=False)
    assert p.returncode == 2 and "TABLE=VERSION" in p.stderr
    p = _run(["tables"], tmp_path / "lake", check=False, VIDEOMDM_DEVICE="tpu")
    assert p.returncode == 2
    assert "VIDEOMDM_DEVICE" in p.stderr and "Traceback" not in p.stderr


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "videomdm"
    assert exe.exists()
    assert "ingest" in subprocess.run([exe, "--help"], capture_output=True, text=True).stdout
