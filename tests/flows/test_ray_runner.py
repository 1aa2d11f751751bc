"""The extract flow on a local Ray instance gives the same keypoints as on threads."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import ThreadPoolTaskRunner

from videomdm.flows.extract import extract_flow
from videomdm.flows.ingest import ingest_flow
from videomdm.flows.runners import make_task_runner, task_resources, worker_api
from videomdm.storage import Lake, run_sql

prefect_ray = pytest.importorskip("prefect_ray", reason="the ray runner needs prefect-ray")
from prefect_ray.context import RemoteOptionsContext  # noqa: E402
from prefect_ray.task_runners import PrefectRayFuture, RayTaskRunner  # noqa: E402

# Two shared cores: a small local Ray, no dashboard, the smallest object store Ray accepts.
SMALL_RAY = {"num_cpus": 2, "include_dashboard": False, "object_store_memory": 80 * 2**20}


@pytest.fixture(scope="module")
def one_short_video(tmp_path_factory, videos_dir) -> Path:
    """sports2d_demo.mp4 cut to 2 s: two people, about 60 frames."""
    d = tmp_path_factory.mktemp("one")
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(videos_dir / "sports2d_demo.mp4")]
        + ["-t", "2", "-c:v", "libx264", "-preset", "ultrafast", str(d / "sports2s.mp4")],
        check=True,
    )
    return d


def _rows(lake_root: str) -> list[tuple[int, int]]:
    t = run_sql(Lake(lake_root), "select track_id, frame from keypoints order by all")
    return list(zip(t.column("track_id").to_pylist(), t.column("frame").to_pylist(), strict=True))


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_extract_on_ray_matches_threads(one_short_video, tmp_path, monkeypatch):
    lakes = {name: str(tmp_path / f"lake_{name}") for name in ("thread", "ray")}
    for lake in lakes.values():
        ingest_flow(str(one_short_video), "one", lake=lake)

    by_thread = extract_flow(lake=lakes["thread"], max_videos=1)

    submitted: list[object] = []
    real_submit = RayTaskRunner.submit

    def spy(self, *args, **kwargs):  # runs in this process: record what went to Ray
        fut = real_submit(self, *args, **kwargs)
        submitted.append(fut)
        return fut

    monkeypatch.setattr(RayTaskRunner, "submit", spy)
    runner = make_task_runner("ray", ray_init_kwargs=SMALL_RAY)
    start = time.perf_counter()
    with worker_api(runner):  # as the CLI calls it (a no-op here: the harness sets the API)
        by_ray = extract_flow.with_options(task_runner=runner)(lake=lakes["ray"], max_videos=1)
    seconds = time.perf_counter() - start
    print(f"extract on a local Ray instance (start, 1 video, stop): {seconds:.1f} s")

    assert len(submitted) == 1 and isinstance(submitted[0], PrefectRayFuture)
    assert by_ray.count("done") == by_thread.count("done") == 1 and by_ray.count("failed") == 0
    assert by_ray.rows == by_thread.rows > 0
    rows = _rows(lakes["ray"])
    assert len(rows) == by_ray.rows and len({track for track, _ in rows}) >= 2
    assert rows == _rows(lakes["thread"])


def test_make_task_runner_options(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert isinstance(make_task_runner(), ThreadPoolTaskRunner)
    with pytest.raises(ValueError, match="valid options: thread, ray"):
        make_task_runner("dask")
    with pytest.raises(ValueError, match="--runner ray"):
        make_task_runner("thread", ray_address="ray://head:10001")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert isinstance(make_task_runner("ray"), RayTaskRunner)  # local Ray: a local API does
        with pytest.raises(ValueError, match="PREFECT_API_URL"):
            make_task_runner("ray", "ray://head:10001")
    with temporary_settings(updates={PREFECT_API_URL: "http://prefect:4200/api"}):
        ray_runner = make_task_runner("ray", "ray://head:10001", ray_init_kwargs={"num_cpus": 1})
    assert isinstance(ray_runner, RayTaskRunner)
    assert ray_runner.address == "ray://head:10001" and ray_runner.init_kwargs["num_cpus"] == 1


def test_ray_workers_get_this_process_api(monkeypatch):
    """With no Prefect API set, Ray workers are pointed at this process's temporary server
    (else each worker starts its own); with one set, or on threads, nothing changes."""
    import prefect.server.api.server as server

    class FakeServer:
        api_url = "http://127.0.0.1:4321/api"
        started = False

        def start(self):
            FakeServer.started = True

    monkeypatch.setattr(server, "SubprocessASGIServer", FakeServer)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with worker_api(make_task_runner("thread")):
            assert PREFECT_API_URL.value() is None and not FakeServer.started
        with worker_api(make_task_runner("ray")):
            assert PREFECT_API_URL.value() == FakeServer.api_url and FakeServer.started
        assert PREFECT_API_URL.value() is None
    with temporary_settings(updates={PREFECT_API_URL: "http://prefect:4200/api"}):
        with worker_api(make_task_runner("ray")):
            assert PREFECT_API_URL.value() == "http://prefect:4200/api"


@pytest.mark.parametrize(
    ("runner", "gpu", "expected"),
    [("ray", True, {"num_gpus": 1}), ("ray", False, {}), ("thread", True, {})],
)
def test_gpu_tasks_ask_ray_for_a_gpu(monkeypatch, runner, gpu, expected):
    """Without starting Ray: the options the Ray runner would put on ``ray.remote``."""
    import videomdm.flows.runners as runners

    class FakeFlowRun:
        task_runner = make_task_runner(runner)

    monkeypatch.setattr(runners.FlowRunContext, "get", classmethod(lambda cls: FakeFlowRun()))
    with task_resources(gpu=gpu):
        assert RemoteOptionsContext.get().current_remote_options == expected
    assert RemoteOptionsContext.get().current_remote_options == {}
