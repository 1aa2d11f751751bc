"""Event-driven retraining against a real Prefect server.

A Prefect server runs as a subprocess with its own home and database; `videomdm serve` serves the
`retrain` deployment with its trigger from prefect.yaml (a 2-step training budget); `videomdm
release` creates a release, whose `videomdm.release.created` event starts a `retrain` run with
the release name, which trains VideoMDM on that release and completes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from synthetic import lifted_lake

from videomdm.models.motion.mocap import load_mocap_dir
from videomdm.storage import Lake, run_sql

BIN = Path(sys.executable).parent
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, path: str, body: dict | None = None):
    req = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _wait(what: str, check, timeout: float, procs: dict, logs: Path) -> None:
    """Poll ``check()`` until truthy; on timeout or a dead process, fail with the logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass  # the server is not up yet
        for name, p in procs.items():
            if p.poll() is not None:
                pytest.fail(f"{name} exited {p.returncode} waiting for {what}:\n{_tails(logs)}")
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{_tails(logs)}")


def _tails(logs: Path) -> str:
    return "\n".join(
        f"--- {f.name}\n{f.read_text(errors='replace')[-4000:]}" for f in sorted(logs.glob("*.log"))
    )


def _synthetic_lake(lake_root: str, assets: Path) -> None:
    """A lifted clip: a mocap walk seen by a camera 5 m away, written as extract writes it."""
    walk = max(
        load_mocap_dir(assets / "mocap" / "cmu_bvh_subject131", fps=30), key=lambda c: len(c.joints)
    )
    lifted_lake(lake_root, walk.joints, str(assets / "mocap" / "cmu_bvh_subject131"))
    assert run_sql(Lake(lake_root), "select count(*) n from motions").column("n")[0].as_py() == 1


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_release_event_triggers_retrain_on_that_release(tmp_path, assets):
    lake = str(tmp_path / "lake")
    _synthetic_lake(lake, assets)
    logs = tmp_path / "logs"
    logs.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "VIDEOMDM_LAKE": lake,
    }
    env.pop("PREFECT_API_URL", None)
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, args: list[str], **extra: str) -> None:
        with open(logs / f"{name}.log", "w") as out:
            procs[name] = subprocess.Popen(
                args, env={**env, **extra}, stdout=out, stderr=subprocess.STDOUT
            )

    try:
        start(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        )
        _wait("the server", lambda: _api(url, "/health"), 120, procs, logs)
        start(
            "serve",
            [str(BIN / "videomdm"), "serve", "--only", "retrain", "--param", "retrain.steps=2"],
            PREFECT_API_URL=url,
        )
        _wait(
            "the retrain deployment and its automation",
            lambda: _api(url, "/deployments/filter", {}) and _api(url, "/automations/filter", {}),
            120,
            procs,
            logs,
        )
        name = "trigger-test-1"
        p = subprocess.run(
            [str(BIN / "videomdm"), "release", name, "--notes", "from the trigger test"],
            env={**env, "PREFECT_API_URL": url},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stdout + p.stderr

        def completed() -> bool:
            runs = _api(url, "/flow_runs/filter", {"flows": {"name": {"any_": ["retrain"]}}})
            mine = [r for r in runs if r["parameters"].get("release") == name]
            failed = [r for r in mine if r["state_type"] in ("FAILED", "CRASHED")]
            if failed:
                pytest.fail(f"retrain run failed: {failed[0]['state_name']}\n{_tails(logs)}")
            return any(r["state_type"] == "COMPLETED" for r in mine)

        _wait(f"a completed retrain of {name}", completed, TIMEOUT_S, procs, logs)
    finally:
        for p in reversed(procs.values()):
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    run = run_sql(Lake(lake), "select * from runs where kind = 'train'").to_pylist()
    assert [r["release"] for r in run] == [name] and run[0]["status"] == "ok"
    assert json.loads(run[0]["metrics_json"])["step"] == 2
