"""Task runners for the per-video flows: threads on this machine, or a Ray cluster.

A flow's task runner is fixed when it is decorated, so callers swap it with
``flow.with_options(task_runner=make_task_runner(...))``. Ray (``prefect-ray``) is an optional
extra and is imported only when asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from videomdm.config import RUNNERS, forwarded_env, get_settings
from videomdm.errors import UserError


def make_task_runner(
    runner: str = "thread",
    ray_address: str | None = None,
    max_workers: int = 2,
    ray_init_kwargs: dict[str, Any] | None = None,
) -> TaskRunner:
    """A thread pool of ``max_workers``, or a Ray runner on ``ray_address`` (``ray://HOST:10001``;
    None starts a local Ray instance, or joins the one named by ``$RAY_ADDRESS``). Call the flow
    inside ``worker_api(runner)``."""
    if runner not in RUNNERS:
        raise UserError(f"unknown task runner {runner!r}; valid options: {', '.join(RUNNERS)}")
    if runner == "thread":
        if ray_address:
            raise UserError("--ray-address needs the ray runner (--runner ray)")
        return ThreadPoolTaskRunner(max_workers=max_workers)
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise UserError("the ray runner needs prefect-ray: pip install 'videomdm[ray]'") from None
    if (ray_address or get_settings().ray_address) and not PREFECT_API_URL.value():
        raise UserError(
            "tasks on a Ray cluster report to the Prefect API: set PREFECT_API_URL to a server "
            "its nodes can reach (e.g. http://HOST:4200/api from docker/compose.yaml)"
        )
    env = forwarded_env()
    init_kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}} if env else {}
    init_kwargs.update(ray_init_kwargs or {})
    return RayTaskRunner(address=ray_address, init_kwargs=init_kwargs)


@contextlib.contextmanager
def worker_api(task_runner: TaskRunner) -> Iterator[None]:
    """Around a flow call: Ray workers are other processes and get the caller's settings with
    each task, so with no Prefect API configured each would start a temporary server of its own.
    Under Ray this starts (or reuses) this process's temporary server and points the settings at
    it. A no-op for threads or when ``PREFECT_API_URL`` is set."""
    if not _is_ray(task_runner) or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the instance Prefect's own client would start
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


@contextlib.contextmanager
def task_resources(gpu: bool) -> Iterator[None]:
    """Around task submission: under the Ray runner a GPU task asks Ray for one GPU, so Ray
    places it on a GPU node and runs at most one per GPU. A no-op for any other runner."""
    ctx = FlowRunContext.get()
    if not gpu or ctx is None or not _is_ray(ctx.task_runner):
        yield
        return
    from prefect_ray.context import remote_options

    with remote_options(num_gpus=1):
        yield


def _is_ray(task_runner: object) -> bool:
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        return False
    return isinstance(task_runner, RayTaskRunner)
