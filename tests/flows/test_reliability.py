"""Reliability as a user meets it, through the real command line: a SIGKILLed extraction re-runs
to exactly the rows of an uninterrupted one, two runs at once write nothing twice, and a release
never changes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "videomdm.cli"]
KEY = "video_id, extractor, track_id, frame"
pytestmark = pytest.mark.slow


def _env(lake: Path) -> dict[str, str]:
    return {**os.environ, "VIDEOMDM_LAKE": str(lake)}


def _run(args: list[str], lake: Path, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(CLI + args, env=_env(lake), capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def _sql(lake: Path, query: str, *extra: str) -> list[dict]:
    return json.loads(_run(["sql", query, "--format", "json", *extra], lake).stdout)


def _state(lake: Path) -> dict:
    """What must match an uninterrupted run: rows, keys seen twice, markers and their counts."""
    (counts,) = _sql(
        lake,
        f"select count(*) as rows, count(*) - count(distinct ({KEY})) as duplicates from keypoints",
    )
    marks = _sql(
        lake,
        "select item_id, producer, status, rows from markers where table_name = 'keypoints'",
    )
    return {**counts, "markers": marks}


@pytest.fixture(scope="module")
def short_video(tmp_path_factory, videos_dir) -> Path:
    """The first 4 s of sports2d_demo (two people; the extract takes seconds, not tens)."""
    d = tmp_path_factory.mktemp("short_video")
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(videos_dir / "sports2d_demo.mp4"),
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(d / "sports4s.mp4"),
        ],
        check=True,
    )
    return d


@pytest.fixture(scope="module")
def clean(tmp_path_factory, short_video) -> tuple[Path, dict]:
    """A lake after one uninterrupted ingest + extract, and its state."""
    lake = tmp_path_factory.mktemp("clean") / "lake"
    _run(["ingest", str(short_video), "-c", "rel"], lake)
    _run(["extract", "-c", "rel"], lake)
    state = _state(lake)
    assert state["rows"] > 0 and state["duplicates"] == 0
    assert [m["status"] for m in state["markers"]] == ["done"]
    assert state["markers"][0]["rows"] == state["rows"]
    return lake, state


def _first_data_commit(lake: Path) -> bool:
    return (lake / "keypoints" / "_delta_log" / f"{1:020d}.json").exists()


def test_sigkill_mid_write_then_rerun_gives_the_clean_rows(clean, short_video, tmp_path):
    _, clean_state = clean
    lake = tmp_path / "lake"
    _run(["ingest", str(short_video), "-c", "rel"], lake)
    proc = subprocess.Popen(
        CLI + ["extract", "-c", "rel"],
        env=_env(lake),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not _first_data_commit(lake) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)  # the marker lands ~70 ms after the data commit: kill in between
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the extract finished before it could be killed"
    killed = _state(lake)
    assert killed["duplicates"] == 0
    # usually killed between the data commit and its marker: rows that do not count yet
    assert killed["markers"] == [] or killed == clean_state

    _run(["extract", "-c", "rel"], lake)
    assert _state(lake) == clean_state


def test_two_runs_at_once_write_nothing_twice(clean, short_video, tmp_path):
    _, clean_state = clean
    lake = tmp_path / "lake"
    cli = " ".join(CLI)
    script = f"{cli} ingest {short_video} -c rel && {cli} extract -c rel"
    procs = [
        subprocess.Popen(
            ["bash", "-c", script],
            env=_env(lake),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert _state(lake) == clean_state
    assert _sql(lake, "select count(*) as n from videos") == [{"n": 1}]


def test_a_release_never_changes(clean, videos_dir, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(clean[0], lake)
    p = _run(["release", "r1", "--notes", "before clips"], lake)
    assert "release r1:" in p.stdout
    q = (
        "select (select count(*) from videos) as videos, (select count(*) from keypoints) as kp, "
        "(select count(*) from clips) as clips, (select count(*) from markers) as markers"
    )
    pinned = _sql(lake, q, "--release", "r1")

    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(videos_dir / "mgt_dancer.avi", more / "mgt_dancer.avi")
    _run(["ingest", str(more), "-c", "rel"], lake)
    _run(["clips", "-c", "rel"], lake)
    now = _sql(lake, q)
    assert now[0]["videos"] == pinned[0]["videos"] + 1 and now[0]["clips"] > pinned[0]["clips"]
    assert _sql(lake, q, "--release", "r1") == pinned

    again = _run(["release", "r1"], lake, check=False)
    assert again.returncode == 1 and "'r1' already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert _sql(lake, q, "--release", "r1") == pinned
    listed = json.loads(_run(["releases", "--format", "json"], lake).stdout)
    assert [r["name"] for r in listed] == ["r1"] and listed[0]["notes"] == "before clips"
    unknown = _run(["sql", "select 1", "--release", "r2"], lake, check=False)
    assert unknown.returncode == 1 and "known: r1" in unknown.stderr
