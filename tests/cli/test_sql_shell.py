"""`videomdm sql` as a safe shell: it stops on Ctrl-C and on --timeout, reads only the lake's
files, never installs or loads an extension, and its configuration cannot be changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from videomdm.storage import Lake
from videomdm.storage.lake import rows_to_table
from videomdm.storage.query import connect

CLI = [sys.executable, "-m", "videomdm.cli"]
ENDLESS = "SELECT sum(i) FROM range(1000000000000) t(i)"  # hours of work


@pytest.fixture
def lake(tmp_path):
    root = tmp_path / "lake"
    row = {"video_id": "v1", "uri": "/x.mp4", "collection": "c", "status": "ok"}
    Lake(str(root)).merge("videos", rows_to_table("videos", [row]), "test")
    return root


def _sql(lake, *args, check=False):
    env = {**os.environ, "VIDEOMDM_LAKE": str(lake)}
    p = subprocess.run(CLI + ["sql", *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_ctrl_c_interrupts_a_running_query(lake):
    env = {**os.environ, "VIDEOMDM_LAKE": str(lake)}
    p = subprocess.Popen(
        CLI + ["sql", ENDLESS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal: a test run in a background job (CI, a shell's `&`) ignores SIGINT,
        # and its children would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(4)  # imports, connection, then the query is running
    assert p.poll() is None, p.communicate()
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert time.monotonic() - sent < 10  # it stopped, instead of summing for hours
    assert p.returncode == 130 and "interrupted" in err and "Traceback" not in err


def test_timeout_stops_a_query(lake):
    t = time.monotonic()
    p = _sql(lake, ENDLESS, "--timeout", "1")
    assert time.monotonic() - t < 60
    assert p.returncode == 1 and "time limit" in p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/root/*')",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
        "SELECT * FROM read_parquet('/etc/passwd')",
    ],
)
def test_reads_nothing_but_the_lake(lake, query):
    p = _sql(lake, query)
    assert p.returncode == 1 and "Permission Error" in p.stderr, p.stderr
    assert _sql(lake, "SELECT count(*) AS n FROM videos", "-f", "json", check=True).stdout


def test_the_lake_files_still_read(lake):
    out = _sql(lake, "SELECT video_id FROM videos", "-f", "json", check=True).stdout
    assert json.loads(out) == [{"video_id": "v1"}]


def test_extensions_and_settings_are_refused_by_name(lake):
    refused = (("INSTALL httpfs", "INSTALL"), ("LOAD httpfs", "LOAD"), ("SET threads=1", "SET"))
    for q, kind in refused:
        p = _sql(lake, q)
        assert p.returncode == 1 and f"{kind} statements are refused" in p.stderr


def test_connection_is_locked_and_never_autoloads(lake):
    con = connect(Lake(str(lake)))
    settings = dict(
        con.sql(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'autoinstall_known_extensions', 'autoload_known_extensions', 'lock_configuration')"
        ).fetchall()
    )
    assert settings == {
        "enable_external_access": "false",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "lock_configuration": "true",
    }
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error):  # httpfs would be autoloaded (and installed) otherwise
        con.sql("SELECT * FROM 's3://bucket/x.parquet'").fetchall()


def test_several_statements_print_every_result(lake):
    p = _sql(lake, "SELECT 41 + 1 AS first; SELECT 'second' AS second", check=True)
    assert "42" in p.stdout and "second" in p.stdout and p.stdout.count("1 row") == 2
    p = _sql(lake, "SELECT 1; SELECT 2", "--format", "json")
    assert p.returncode == 1 and "one statement" in p.stderr


def test_a_huge_version_is_a_usage_error(lake):
    p = _sql(lake, "SELECT 1", "--at", "videos=100000000000000000000000")
    assert p.returncode == 2 and "too large" in p.stderr and "int too big" not in p.stderr
