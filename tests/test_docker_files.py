"""docker/: the compose file and Dockerfiles parse and are wired together (no docker needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _parse(path: Path):
    dockerfile_parse = pytest.importorskip("dockerfile_parse")
    return dockerfile_parse.DockerfileParser(path=str(path), cache_content=True)


def _default(value: str) -> str:
    """Compose's ``${VAR:-default}`` as the value it has when VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_both_images_exist():
    assert {p.name for p in DOCKERFILES} >= {"worker-cpu.Dockerfile", "worker-cuda.Dockerfile"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile(path):
    df = _parse(path)
    steps = [(s["instruction"], s["value"]) for s in df.structure]
    kinds = [k for k, _ in steps]
    assert kinds.count("FROM") == 1 and df.baseimage and df.cmd
    assert json.loads(df.cmd)[:3] == ["prefect", "worker", "start"]
    # every COPY source is in the repository and not left out of the build context
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copies = [v.split() for k, v in steps if k == "COPY"]
    assert copies
    for *sources, _dest in copies:
        for src in sources:
            assert not src.startswith("--"), f"{path.name}: COPY {src} (a stage or flag?)"
            assert (ROOT / src).exists(), f"{path.name}: COPY source {src} is not in the repo"
            assert src.split("/")[0] not in ignored, f"{path.name}: {src} is in .dockerignore"
    # the lake and weights live where the settings point, on declared volumes
    volumes = json.loads(next(v for k, v in steps if k == "VOLUME"))
    assert sorted(volumes) == sorted([df.envs["VIDEOMDM_LAKE"], df.envs["VIDEOMDM_WEIGHTS_DIR"]])
    # the torch wheel is the one the Makefile pins for the local environment
    pin = re.search(r"torch==([\w.]+)", (ROOT / "Makefile").read_text())
    assert pin and df.args["TORCH_VERSION"] == pin.group(1)
    assert any(k == "RUN" and '".[ray]"' in v for k, v in steps), "installs the ray extra"


def test_cuda_image_swaps_in_onnxruntime_gpu():
    df = _parse(DOCKER / "worker-cuda.Dockerfile")
    assert df.baseimage.startswith("nvidia/cuda:") and "cudnn" in df.baseimage
    run = " ".join(s["value"] for s in df.structure if s["instruction"] == "RUN")
    assert run.index("pip uninstall -y onnxruntime") < run.index("onnxruntime-gpu")
    assert "--index-url" in run and "${TORCH_INDEX}" in run
    assert df.envs["VIDEOMDM_DEVICE"] == "cuda"


def test_compose_services_and_wiring(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "prefect-server", "worker", "worker-gpu"}
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        if "build" in svc:
            build = svc["build"]
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file()

    pg = services["postgres"]["environment"]
    url = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    m = re.fullmatch(r"postgresql\+asyncpg://(\w+):(.+)@(\w+):5432/(\w+)", url)
    assert m, url
    user, password, host, db = m.groups()
    assert (user, host, db) == (pg["POSTGRES_USER"], "postgres", pg["POSTGRES_DB"])
    assert password == pg["POSTGRES_PASSWORD"]
    assert "4200:4200" in services["prefect-server"]["ports"]

    for name, pool in (("worker", "default"), ("worker-gpu", "gpu")):
        svc = services[name]
        assert svc["command"][:5] == ["prefect", "worker", "start", "--pool", pool]
        env = svc["environment"]
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        mounts = {t: src for src, t, *_ in (_default(v).split(":") for v in svc["volumes"])}
        assert mounts[_default(env["VIDEOMDM_LAKE"])] == "lake"
        assert mounts[env["VIDEOMDM_WEIGHTS_DIR"]] == "weights"
        assert "VIDEOMDM_STORAGE_OPTIONS" in env  # passed through from the shell when set
    assert {"lake", "weights", "postgres"} <= set(compose["volumes"])


def test_gpu_worker_is_an_optional_profile_with_nvidia_devices(compose):
    gpu = compose["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert all("profiles" not in s for n, s in compose["services"].items() if n != "worker-gpu")
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["environment"]["VIDEOMDM_DEVICE"] == "cuda"
    assert gpu["build"]["dockerfile"] == "docker/worker-cuda.Dockerfile"
