"""The Prefect API a command's flows talk to: the configured server, or a temporary one.

With ``PREFECT_API_URL`` set, that server is used as it is. Without it Prefect would start a
temporary server itself on the first API call, after the command has imported everything, and
give it 20 s: too little for a first run, which creates and migrates the database in a new
``PREFECT_HOME`` (17-20 s seen on a busy 2-core machine, 29 s once). Here the command starts
the same server (uvicorn on ``prefect.server.api.server:create_app``, as Prefect's
``SubprocessASGIServer`` runs it) before it imports its flows, so the server boots on the other
core while the command loads, and waits for it with a start-up limit of minutes. Nothing here
imports Prefect: its server module alone costs 3.5 s, paid now only by the server process.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from videomdm.config import Settings, get_settings
from videomdm.errors import UserError

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 300.0  # a first start migrates a new database; a busy machine is slow


@dataclass
class TemporaryServer:
    """A Prefect server process on 127.0.0.1 for one command."""

    process: subprocess.Popen[bytes]
    port: int
    started: float = field(default_factory=time.perf_counter)
    ready_after_s: float | None = None  # seconds from start to its first healthy answer

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Block until the server answers its health check (raises if it dies or times out)."""
        while self.ready_after_s is None:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the temporary Prefect server exited with code {self.process.returncode}"
                )
            if _healthy(self.api_url):
                self.ready_after_s = time.perf_counter() - self.started
                log.debug("Prefect server ready after %.1f s", self.ready_after_s)
                return
            if time.perf_counter() - self.started > timeout_s:
                self.stop()
                raise UserError(
                    f"the temporary Prefect server did not answer within {timeout_s:.0f} s; "
                    "set PREFECT_API_URL to a running server (`prefect server start`)"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_current: TemporaryServer | None = None
_MIGRATED = ".videomdm-database-ready"  # in PREFECT_HOME, once a server answered there


def start_api() -> TemporaryServer | None:
    """Give the flows this process runs an API: ``PREFECT_API_URL`` when set (returns None),
    else a temporary server started now, in the background, and stopped at exit. Call it
    before importing Prefect and ``wait_for_api()`` before the first flow."""
    global _current
    s = get_settings()
    if _current is None and not s.prefect_api_url:
        _current = _first_start(s.prefect_home.expanduser()) if _new_home(s) else start_server()
        _point_prefect_at(_current.api_url)
        # registered before Prefect loads, so it runs after Prefect's own exit handlers (log
        # and event flushing), which still talk to the server
        atexit.register(_current.stop)
    return _current


def _new_home(s: Settings) -> bool:
    """Whether Prefect's own SQLite database may still have to be created and migrated."""
    return not s.prefect_database_url and not (s.prefect_home.expanduser() / _MIGRATED).exists()


def _first_start(home: Path) -> TemporaryServer:
    """The first server in a new ``PREFECT_HOME`` creates and migrates its database; two
    commands doing that at once fail ("table ... already exists"), so the first start holds a
    lock until its server answers and the others wait for it."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".videomdm-first-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            server = start_server()
            if not (home / _MIGRATED).exists():
                server.wait_ready()
                (home / _MIGRATED).write_text(f"migrated in {server.ready_after_s:.1f} s\n")
                log.info("Prefect's database created in %s (%.1f s)", home, server.ready_after_s)
            return server
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def wait_for_api(timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Before a flow: wait until the temporary server answers (no-op with a configured one)."""
    if _current is not None:
        _current.wait_ready(timeout_s)


def start_server() -> TemporaryServer:
    """Prefect's server in a subprocess on a free port (not yet ready)."""
    spec = importlib.util.find_spec("prefect")  # its folder, without importing it
    assert spec is not None and spec.submodule_search_locations, "prefect is installed"
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",  # only the services an ephemeral server runs
        "PREFECT__SERVER_FINAL": "1",
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_UI_URL", None)
    app_dir = os.path.dirname(list(spec.submodule_search_locations)[0])
    args = [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory"]
    args += ["prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "error", "--lifespan", "on"]
    log.debug("starting a temporary Prefect server on port %d", port)
    return TemporaryServer(subprocess.Popen(args, env=env), port)


def _point_prefect_at(url: str) -> None:
    """Prefect reads its settings once, on import: before that its environment variable is
    enough, after it the global settings context is replaced."""
    os.environ["PREFECT_API_URL"] = url
    os.environ.setdefault("PREFECT_UI_URL", "")  # it serves no UI: no "View at <url>" lines
    if "prefect.context" in sys.modules:
        import prefect.context

        prefect.context.refresh_global_settings_context()


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as r:  # noqa: S310 - loopback
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False
