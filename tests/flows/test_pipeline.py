"""The whole pipeline on a real video: every step in the lake, a release, a report with pictures,
and with training a VideoMDM run on that release and generated animations."""

from __future__ import annotations

import json
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
PROBE = {"videomdm_probe": "reached"}  # a storage option deltalake ignores on a local lake


@pytest.fixture
def recorded_options(monkeypatch):
    """``VIDEOMDM_STORAGE_OPTIONS`` set to ``PROBE``; the options of every Delta table opened,
    created or written from here on are recorded (and passed on unchanged)."""
    import videomdm.storage.lake as lake_module
    from videomdm.config import get_settings

    seen: list[dict | None] = []
    real_table, real_write = lake_module.DeltaTable, lake_module.write_deltalake

    class Recorded(real_table):
        def __init__(self, uri, *args, storage_options=None, **kwargs):
            seen.append(storage_options)
            super().__init__(uri, *args, storage_options=storage_options, **kwargs)

        @classmethod
        def create(cls, uri, *args, storage_options=None, **kwargs):
            seen.append(storage_options)
            return real_table.create(uri, *args, storage_options=storage_options, **kwargs)

    def write(uri, data, *args, storage_options=None, **kwargs):
        seen.append(storage_options)
        return real_write(uri, data, *args, storage_options=storage_options, **kwargs)

    monkeypatch.setenv("VIDEOMDM_STORAGE_OPTIONS", json.dumps(PROBE))
    get_settings.cache_clear()
    monkeypatch.setattr(lake_module, "DeltaTable", Recorded)
    monkeypatch.setattr(lake_module, "write_deltalake", write)
    yield seen
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def one_video(tmp_path_factory, videos_dir) -> Path:
    d = tmp_path_factory.mktemp("one_video")
    shutil.copy(videos_dir / "sports2d_demo.mp4", d / "sports2d_demo.mp4")
    return d


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_pipeline_end_to_end_with_training(one_video, assets, tmp_path, recorded_options):
    """Also: the lake is opened with the settings' storage options, and every table read and
    write of every step (training, generation and reconstruction included) gets them."""
    from videomdm.flows.generate import reconstruct_flow
    from videomdm.storage import open_lake

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
    assert r.release == "sports-v1" and r.report == str(out / "report.md")
    assert r.steps.extract.count("done") == 1 and r.steps.lift.motions >= 1
    rel = get_release(open_lake(lake), "sports-v1")
    assert rel.row_counts["motions"] == r.steps.lift.motions
    run = run_sql(open_lake(lake), "select release, status from runs where kind = 'train'")
    assert run.to_pylist() == [{"release": "sports-v1", "status": "ok"}]

    md = (out / "report.md").read_text()
    assert "sports-v1" in md and "| ingest |" in md and "fixed-depth baseline" in md
    assert r.trained is not None and r.trained.run_id in md
    pictures = [line.split("](")[1].rstrip(")") for line in md.splitlines() if "![" in line]
    assert any(p.startswith("overlay_") for p in pictures)
    assert sum(p.endswith(".gif") for p in pictures) == 2
    players = [line.split("](")[1].split(")")[0] for line in md.splitlines() if "3D player" in line]
    assert len(players) == 1 and "<html>" in (out / players[0]).read_text()[:200]
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
    assert len(again.steps.extract.results) == 0 and again.steps.lift.videos == 0
    assert again.release.startswith("sports-")
    assert get_release(open_lake(lake), again.release).row_counts == rel.row_counts
    clip_id = run_sql(open_lake(lake), "select clip_id from clips limit 1").to_pylist()[0]
    rec = reconstruct_flow(clip_id["clip_id"], lake=lake, out=str(tmp_path / "rec"))
    assert rec.frames > 0 and rec.pictures is not None and rec.pictures.video is not None
    import av

    with av.open(rec.pictures.video) as c:  # the real clip beside its 3D motion, frame for frame
        assert sum(1 for _ in c.decode(video=0)) == rec.frames
    assert Path(rec.pictures.player).stat().st_size > 3_000_000  # plotly.js inlined
    assert len(recorded_options) > 50 and all(o == PROBE for o in recorded_options)


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
