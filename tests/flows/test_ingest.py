"""Ingest on the real sample videos: idempotent, incremental, and bad files recorded, not fatal."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from videomdm.flows.ingest import ingest_flow
from videomdm.storage import Lake, run_sql

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _videos(lake_root: str) -> list[dict]:
    return run_sql(Lake(lake_root), "select * from videos order by filename").to_pylist()


def test_ingests_both_sample_videos(sample_copy, lake_root):
    summary = ingest_flow(str(sample_copy), "samples", lake=lake_root)
    assert summary.new == 2 and summary.failed == 0
    rows = {r["filename"]: r for r in _videos(lake_root)}
    sports, dancer = rows["sports2d_demo.mp4"], rows["mgt_dancer.avi"]
    assert (sports["width"], sports["height"], sports["fps"], sports["frame_count"]) == (
        1768,
        994,
        30.0,
        230,
    )
    assert sports["codec"] == "vp9" and sports["status"] == "ok"
    assert (dancer["width"], dancer["height"], dancer["fps"], dancer["frame_count"]) == (
        518,
        496,
        25.0,
        1572,
    )
    assert abs(dancer["duration_s"] - 62.88) < 0.05
    assert all(
        len(r["video_id"]) == 16 and r["sha256"].startswith(r["video_id"]) for r in rows.values()
    )


def test_rerun_adds_nothing(sample_copy, lake_root):
    ingest_flow(str(sample_copy), "samples", lake=lake_root)
    version = Lake(lake_root).version("videos")
    summary = ingest_flow(str(sample_copy), "samples", lake=lake_root)
    assert summary.unchanged == 2 and summary.new == 0 and summary.updated == 0
    assert Lake(lake_root).version("videos") == version  # not even an empty commit
    assert len(_videos(lake_root)) == 2


def test_rename_keeps_id_and_updates_uri(sample_copy, lake_root):
    ingest_flow(str(sample_copy), "samples", lake=lake_root)
    before = {r["filename"]: r["video_id"] for r in _videos(lake_root)}
    (sample_copy / "sub").mkdir()
    shutil.move(sample_copy / "mgt_dancer.avi", sample_copy / "sub" / "dancer_renamed.avi")
    summary = ingest_flow(str(sample_copy), "samples", lake=lake_root)
    assert summary.updated == 1 and summary.new == 0
    rows = _videos(lake_root)
    assert len(rows) == 2
    moved = next(r for r in rows if r["video_id"] == before["mgt_dancer.avi"])
    assert moved["uri"].endswith("sub/dancer_renamed.avi")


def test_captions_from_sidecar_and_csv(sample_copy, lake_root):
    (sample_copy / "sports2d_demo.txt").write_text("two people outdoors\n")
    (sample_copy / "captions.csv").write_text("file,caption\nmgt_dancer.avi,a person dances\n")
    ingest_flow(str(sample_copy), "samples", lake=lake_root)
    caps = {r["filename"]: r["caption"] for r in _videos(lake_root)}
    assert caps == {"sports2d_demo.mp4": "two people outdoors", "mgt_dancer.avi": "a person dances"}


def _make_bad_files(folder, videos_dir):
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "head100k.mp4").write_bytes((videos_dir / "sports2d_demo.mp4").read_bytes()[:100_000])
    (folder / "notes.mp4").write_text("this is not a video\n")
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48",
            "-frames:v",
            "1",
            str(folder / "picture.png"),
        ],
        check=True,
    )
    shutil.copy(folder / "picture.png", folder / "picture.avi")
    (folder / "broken_link.mp4").symlink_to(folder / "does_not_exist.mp4")
    locked = folder / "locked.mkv"
    locked.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 64)
    locked.chmod(0)
    (folder / "readme.txt").write_text("not a video extension: ignored")


def test_bad_inputs_are_recorded_and_the_rest_go_on(sample_copy, lake_root, videos_dir):
    _make_bad_files(sample_copy, videos_dir)
    summary = ingest_flow(str(sample_copy), "mixed", lake=lake_root)
    rows = {r["filename"]: r for r in _videos(lake_root)}
    bad = {"zero.mp4", "head100k.mp4", "notes.mp4", "picture.avi", "broken_link.mp4", "locked.mkv"}
    assert set(rows) == bad | {"sports2d_demo.mp4", "mgt_dancer.avi"}  # .png/.txt ignored
    for name in bad:
        assert rows[name]["status"] == "failed", name
        assert rows[name]["error"], name
    assert rows["sports2d_demo.mp4"]["status"] == rows["mgt_dancer.avi"]["status"] == "ok"
    assert summary.failed == len(bad)
    assert "unreadable" in rows["broken_link.mp4"]["error"]
    if os.geteuid() != 0:  # root reads a mode-000 file anyway
        assert "unreadable" in rows["locked.mkv"]["error"]


def test_missing_source_is_a_clear_error(tmp_path, lake_root):
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        ingest_flow(str(tmp_path / "does_not_exist"), "x", lake=lake_root)
