"""Extract flow on real video: keypoints in the lake, idempotent per (video, extractor)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from videomdm.flows.extract import extract_flow
from videomdm.flows.ingest import ingest_flow
from videomdm.models.perception.video import VideoDecodeError
from videomdm.storage import Lake, run_sql

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def short_videos(tmp_path_factory, videos_dir) -> Path:
    """The two samples cut short (tests stay fast), plus a clip with nobody in it."""
    d = tmp_path_factory.mktemp("short")
    _ffmpeg(
        "-i",
        str(videos_dir / "mgt_dancer.avi"),
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(d / "dancer3s.mp4"),
    )
    _ffmpeg(
        "-i",
        str(videos_dir / "sports2d_demo.mp4"),
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(d / "sports3s.mp4"),
    )
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "1",
        "-pix_fmt",
        "yuv420p",
        str(d / "nobody.mp4"),
    )
    return d


@pytest.fixture
def ingested(short_videos, lake_root) -> str:
    ingest_flow(str(short_videos), "short", lake=lake_root)
    return lake_root


def _counts(lake_root: str) -> dict[str, tuple[int, int]]:
    rows = run_sql(
        Lake(lake_root),
        """
        select v.filename, count(distinct k.track_id) as tracks, count(k.frame) as n
        from videos v left join keypoints k using (video_id) group by 1""",
    ).to_pylist()
    return {r["filename"]: (r["tracks"], r["n"]) for r in rows}


def test_extract_writes_keypoints_and_skips_on_rerun(ingested, tmp_path):
    summary = extract_flow(collection="short", lake=ingested)
    assert [summary.count(s) for s in ("done", "no_person", "failed")] == [2, 1, 0]
    counts = _counts(ingested)
    assert (
        counts["dancer3s.mp4"][0] == 1 and counts["dancer3s.mp4"][1] >= 70
    )  # one dancer, 75 frames
    assert counts["sports3s.mp4"][0] >= 2  # two people
    assert counts["nobody.mp4"] == (0, 0)
    kp = run_sql(
        Lake(ingested), "select kp_x, kp_y, kp_score, bbox from keypoints limit 1"
    ).to_pylist()[0]
    assert len(kp["kp_x"]) == 17 and 0 <= min(kp["kp_score"]) <= max(kp["kp_score"]) <= 1
    x1, y1, x2, y2 = kp["bbox"]
    assert x1 < x2 and y1 < y2

    _check_pictures(ingested, tmp_path)

    version = Lake(ingested).version("keypoints")
    again = extract_flow(collection="short", lake=ingested)
    assert len(again.results) == 0
    assert Lake(ingested).version("keypoints") == version


def test_crash_mid_video_leaves_no_rows_and_rerun_completes(ingested, monkeypatch):
    import videomdm.tasks.extract as tasks

    real = tasks.run_perception

    def crash_after_first_batch(path, cfg, weights=None, **kw):
        for batch in real(path, cfg, weights, **kw):
            yield batch
            if "dancer" in str(path):
                raise VideoDecodeError(f"decoding {path} failed: simulated corruption")

    monkeypatch.setattr(tasks, "run_perception", crash_after_first_batch)
    summary = extract_flow(collection="short", lake=ingested)
    assert summary.count("failed") == 1
    failed = next(r for r in summary.results if r.status == "failed")
    assert (
        failed.error and "dancer3s.mp4" in failed.error and "simulated corruption" in failed.error
    )
    assert _counts(ingested)["dancer3s.mp4"] == (0, 0)  # nothing partial
    marks = run_sql(Lake(ingested), "select status, error from markers where status='failed'")
    assert marks.num_rows == 1

    monkeypatch.setattr(tasks, "run_perception", real)
    again = extract_flow(collection="short", lake=ingested)
    assert len(again.results) == 1 and again.count("done") == 1  # only the failed one is redone
    dup = run_sql(
        Lake(ingested),
        "select count(*) as n from (select video_id, track_id, frame, "
        "count(*) c from keypoints group by all having c > 1)",
    ).to_pylist()
    assert dup == [{"n": 0}]


def _check_pictures(lake_root: str, out: Path) -> None:
    """Overlay video and contact sheet of the dancer: real files of the right size."""
    import av
    import cv2

    from videomdm.tasks.render import render_overlay, render_sheet

    lake = Lake(lake_root)
    vid = run_sql(lake, "select video_id from videos where filename = 'dancer3s.mp4'")
    vid = vid.column("video_id")[0].as_py()
    sheet = cv2.imread(str(render_sheet(lake, vid, out / "sheet.png", n=4, cols=2)))
    assert sheet is not None and sheet.shape[1] == 2 * 480
    mp4 = render_overlay(lake, vid, out / "overlay.mp4", max_frames=20)
    with av.open(str(mp4)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == 20
    with pytest.raises(ValueError, match="no extracted keypoints"):
        render_sheet(lake, "0" * 16, out / "none.png")


def test_a_person_seen_too_briefly_is_too_short_not_no_person(tmp_path, videos_dir, lake_root):
    """Six frames of a person: tracked, but shorter than the minimum track length."""
    d = tmp_path / "blink"
    d.mkdir()
    src = str(videos_dir / "sports2d_demo.mp4")
    _ffmpeg(
        "-i", src, "-frames:v", "6", "-c:v", "libx264", "-preset", "ultrafast", str(d / "b.mp4")
    )
    ingest_flow(str(d), "blink", lake=lake_root)
    summary = extract_flow(collection="blink", lake=lake_root)
    assert [(r.status, r.rows) for r in summary.results] == [("too_short", 0)]
    markers = run_sql(Lake(lake_root), "select status from markers").column("status").to_pylist()
    assert markers == ["too_short"]
    assert extract_flow(collection="blink", lake=lake_root).results == []  # finished: skipped
