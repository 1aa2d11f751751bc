"""Shared fixtures: real assets from ../shared/assets, an isolated Prefect, a fresh lake."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from videomdm.config import apply_process_defaults

apply_process_defaults()  # as the command line does, before Prefect loads
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ASSETS = Path(
    os.environ.get("VIDEOMDM_ASSETS", Path(__file__).resolve().parents[2] / "shared" / "assets")
)
os.environ["VIDEOMDM_ASSETS"] = str(ASSETS)  # test modules read it at import
VIDEOS = ASSETS / "videos"
if (ASSETS / "weights").exists():
    os.environ.setdefault("VIDEOMDM_WEIGHTS_DIR", str(ASSETS / "weights"))
SAMPLE_VIDEOS = ("sports2d_demo.mp4", "mgt_dancer.avi")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need the shared assets (set VIDEOMDM_ASSETS)")
    return path


@pytest.fixture(scope="session")
def assets() -> Path:
    return _need(ASSETS)


@pytest.fixture(scope="session")
def mocap(assets) -> list:
    """Joints ``(T, 17, 3)`` of three small mocap sources (real motion capture)."""
    from videomdm.models.motion.mocap import load_mocap_dir

    dirs = ("cmu_bvh_subject131", "animated_drawings_bvh", "humanml3d_sample")
    clips = [c for d in dirs for c in load_mocap_dir(assets / "mocap" / d)]
    assert len(clips) >= 5
    return [c.joints for c in clips]


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    return _need(VIDEOS)


@pytest.fixture(scope="session", autouse=True)
def prefect_home(tmp_path_factory) -> Path:
    """Each test session gets its own Prefect home (database, settings): no shared state."""
    home = tmp_path_factory.mktemp("prefect_home")
    os.environ["PREFECT_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def prefect_harness(prefect_home):
    """One real temporary Prefect server for the in-process flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def lake_root(tmp_path) -> str:
    return str(tmp_path / "lake")


@pytest.fixture
def sample_copy(tmp_path, videos_dir) -> Path:
    """A private copy of the sample videos (tests rename and add files)."""
    dst = tmp_path / "videos"
    dst.mkdir()
    for name in SAMPLE_VIDEOS:
        shutil.copy(videos_dir / name, dst / name)
    return dst
