"""Headless Chromium (Debian's package) for tests that look at what a person would see."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# Flags that work headless on a machine with no GPU and no network: software WebGL
# (SwiftShader) for plotly's 3D scenes, and none of Chromium's background connections.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Chromium is not installed (`make test` installs Debian's chromium)")
    return exe


def run_chromium(page: Path, profile: Path, *args: str, budget_ms: int = 10000) -> str:
    """Open ``page`` headless with a fresh profile; what Chromium printed (``--dump-dom``)."""
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
    p = subprocess.run(
        [*cmd, *args, page.resolve().as_uri()], capture_output=True, text=True, timeout=180
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout
