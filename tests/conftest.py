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
def tiny_ladder(assets):
    """A ``LadderConfig`` of rungs R0 and R1 at a budget of seconds (plumbing, not numbers)."""
    from videomdm.models.evaluation.ladder_config import LadderConfig

    return LadderConfig(
        mocap=str(assets / "mocap"),
        rungs=("R0", "R1"),
        steps=3,
        train_clips=4,
        val_clips=3,
        cameras=2,
        in_lifter_steps=2,
        weak_lifter_steps=2,
        encoder_steps=5,
        n_generate=4,
        n_prompts=2,
        per_prompt=2,
        sample_steps=2,
    )


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    return _need(VIDEOS)


@pytest.fixture(scope="session", autouse=True)
def prefect_home(tmp_path_factory) -> Path:
    """Each test session gets its own Prefect home (database, settings): no shared state."""
    home = tmp_path_factory.mktemp("prefect_home")
    os.environ["PREFECT_HOME"] = str(home)
    return home


@pytest.fixture(autouse=True)
def _own_prefect_server_stays_in_its_test():
    """A command run in-process (``CliRunner``) starts its own Prefect server and points this
    process's ``PREFECT_API_URL`` at it; a later test's subprocess must not inherit that (the
    empty-home test then found no database of its own when run after the flow tests)."""
    keys = ("PREFECT_API_URL", "PREFECT_UI_URL")
    before = {k: os.environ.get(k) for k in keys}
    yield
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


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


@pytest.fixture(scope="module")
def s3_server():
    """A real S3-compatible server (moto's standalone server) on 127.0.0.1, one bucket, and
    the storage options that reach it. It honours conditional writes (If-None-Match), which
    deltalake's commits and the lake's locks rely on. It runs in its own process: deltalake
    holds the GIL in some calls, so a server thread in the test process would stall."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="videomdm")
    yield options, client
    proc.terminate()
    proc.wait(timeout=30)
