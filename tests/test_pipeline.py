"""The whole pipeline on a real video: every step in the lake, a release, a report with pictures,
and with training a VideoMDM run on that release and generated animations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from videomdm.flows.pipeline import default_release_name, pipeline_flow
from videomdm.storage import Lake, run_sql
from videomdm.storage.releases import get_release

CLI = [sys.executable, "-m", "videomdm.cli"]
PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def one_video(tmp_path_factory, videos_dir) -> Path:
    d = tmp_path_factory.mktemp("one_video")
    shutil.copy(videos_dir / "sports2d_demo.mp4", d / "sports2d_demo.mp4")
    return d


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_pipeline_end_to_end_with_training(one_video, assets, tmp_path):
    lake, out = str(tmp_path / "lake"), tmp_path / "report"
    r = pipeline_flow(
        str(one_video),
        "sports",
        mocap=[str(assets / "mocap" / "cmu_bvh_subject131")],
        train=True,
        steps=2,
        out=str(out),
        release="sports-v1",
        lifter_steps=40,
        lake=lake,
    )
    assert r["release"] == "sports-v1" and r["report"] == str(out / "report.md")
    assert r["steps"]["extract"]["done"] == 1 and r["steps"]["lift"]["motions"] >= 1
    rel = get_release(Lake(lake), "sports-v1")
    assert rel["row_counts"]["motions"] == r["steps"]["lift"]["motions"]
    run = run_sql(Lake(lake), "select release, status from runs where kind = 'train'")
    assert run.to_pylist() == [{"release": "sports-v1", "status": "ok"}]

    md = (out / "report.md").read_text()
    assert "sports-v1" in md and "| ingest |" in md and "fixed-depth baseline" in md
    assert r["trained"]["train"]["run_id"] in md
    pictures = [line.split("](")[1].rstrip(")") for line in md.splitlines() if "![" in line]
    assert any(p.startswith("overlay_") for p in pictures)
    assert sum(p.endswith(".gif") for p in pictures) == 2
    for p in pictures:  # relative links that resolve beside the report
        assert (out / p).read_bytes()[:4] in (PNG, b"GIF8"), p

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        keys = {"pipeline-report", "pipeline-steps"}
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys)))
        )
    assert {a.key for a in found} == keys

    # a second run over the same collection does no new work and makes a new release
    again = pipeline_flow(str(one_video), "sports", out=str(tmp_path / "again"), lake=lake)
    assert again["steps"]["extract"]["videos"] == 0 and again["steps"]["lift"]["videos"] == 0
    assert again["release"].startswith("sports-")
    assert get_release(Lake(lake), again["release"])["row_counts"] == rel["row_counts"]


def test_default_release_names_are_valid():
    assert default_release_name("my collection/2026").startswith("my-collection-2026-")
    assert default_release_name("///").startswith("release-")


def test_run_refuses_early_without_a_lifter_or_with_a_taken_release(one_video, tmp_path):
    env = {**os.environ, "VIDEOMDM_LAKE": str(tmp_path / "lake")}
    p = subprocess.run(
        CLI + ["run", str(one_video), "-c", "x"], env=env, capture_output=True, text=True
    )
    assert p.returncode == 1 and "--mocap" in p.stderr and "Traceback" not in p.stderr
    from videomdm.storage.releases import create_release

    create_release(Lake(str(tmp_path / "lake")), "taken")
    p = subprocess.run(
        CLI + ["run", str(one_video), "-c", "x", "--mocap", "m", "--release", "taken"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1 and "'taken' already exists" in p.stderr
