"""Where the fixed cost of a command goes: imports, Prefect's temporary server, the flow run.

Builds a lake whose collection is already extracted (the sample videos' rows and a done-marker
per video for the current extractor), then times, each the median of ``--repeat`` runs:

- the command line's import, and the extract flow module's import (Prefect, ONNX Runtime...);
- Prefect's temporary server from start to its first healthy answer, in a used PREFECT_HOME
  and in an empty one (which creates and migrates the database), and its stop;
- whole commands: a no-op ``videomdm extract`` and ``videomdm clips`` (a flow run with nothing
  to do), for this checkout and, with ``--before DIR``, for another one (e.g. a ``git archive``
  of an older commit), run the same way.

    python benchmarks/fixed_cost.py [--repeat 3] [--before /tmp/old-checkout]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _timed(args: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run(args, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            raise SystemExit(f"{args} failed:\n{p.stderr[-2000:]}")
    return statistics.median(times)


def _extracted_lake(root: Path, videos: Path) -> None:
    """The samples ingested and marked extracted by the current extractor (no decoding)."""
    from videomdm.config import get_settings
    from videomdm.models.perception.config import PerceptionConfig
    from videomdm.models.perception.pipeline import extractor_id
    from videomdm.storage import Lake
    from videomdm.storage.lake import rows_to_table
    from videomdm.storage.markers import DONE, set_marker

    lake = Lake(str(root))
    rows = [
        dict(video_id=f"{i:016x}", uri=str(v), collection="bench", status="ok", fps=30.0)
        for i, v in enumerate(sorted(videos.iterdir()))
    ]
    lake.merge("videos", rows_to_table("videos", rows), "bench")
    extractor = extractor_id(PerceptionConfig(), get_settings().weights_source())
    for r in rows:
        set_marker(lake, "keypoints", r["video_id"], extractor, DONE, rows=0)


def _server_start(env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Seconds from start to healthy, and to stopped, of the temporary server."""
    code = (
        "import time; from videomdm.flows.server import start_server as s; "
        "srv = s(); srv.wait_ready(); t = time.perf_counter(); srv.stop(); "
        "print(srv.ready_after_s, time.perf_counter() - t)"
    )
    ready, stop = [], []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        ready.append(float(out[0]))
        stop.append(float(out[1]))
    return statistics.median(ready), statistics.median(stop)


def _with_running_server(py: list[str], env: dict[str, str], n: int) -> tuple[str, float, None]:
    """``videomdm clips`` with ``PREFECT_API_URL`` naming a server that is already running."""
    from videomdm.flows.server import start_server

    server = start_server()
    try:
        server.wait_ready()
        run_env = {**env, "PREFECT_API_URL": server.api_url}
        seconds = _timed(py + ["-m", "videomdm.cli", "clips", "-c", "bench"], run_env, n)
    finally:
        server.stop()
    return ("`videomdm clips`, PREFECT_API_URL set (running)", seconds, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", type=Path, help="another checkout to time the same way")
    ap.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "assets" / "videos")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="videomdm-fixed-cost-"))
    lake = tmp / "lake"
    sys.path.insert(0, str(REPO))
    from videomdm.config import apply_process_defaults

    apply_process_defaults()  # as the command line does (no telemetry from the server)
    _extracted_lake(lake, args.videos)
    base = {**os.environ, "VIDEOMDM_LAKE": str(lake), "PREFECT_HOME": str(tmp / "home")}
    env = {**base, "PYTHONPATH": str(REPO)}
    n = args.repeat
    py = [sys.executable]
    rows: list[tuple[str, float, float | None]] = []
    rows.append(("import videomdm.cli", _timed(py + ["-c", "import videomdm.cli"], env, n), None))
    imp = py + ["-c", "import videomdm.flows.extract"]
    rows.append(("import the extract flow (Prefect, ONNX Runtime)", _timed(imp, env, n), None))
    first = [_server_start({**env, "PREFECT_HOME": str(tmp / f"new{i}")}, 1)[0] for i in range(n)]
    rows.append(("server start, empty PREFECT_HOME", statistics.median(first), None))
    ready, stop = _server_start(env, n)
    rows.append(("server start, used PREFECT_HOME", ready, None))
    rows.append(("server stop", stop, None))
    for label, cmd in (
        ("no-op `videomdm extract`", ["extract", "-c", "bench"]),
        ("`videomdm clips` (a flow with nothing to do)", ["clips", "-c", "bench"]),
    ):
        full = py + ["-m", "videomdm.cli", *cmd]
        before = None
        if args.before:
            before = _timed(full, {**base, "PYTHONPATH": str(args.before)}, n)
        rows.append((label, _timed(full, env, n), before))
    rows.append(_with_running_server(py, env, n))
    print(f"\nmedian of {n} runs, seconds (lake and PREFECT_HOME under {tmp})\n")
    print(f"| {'what':<48} | {'now':>6} | {'before':>6} |")
    print(f"|{'-' * 50}|{'-' * 8}|{'-' * 8}|")
    for label, now, old in rows:
        print(f"| {label:<48} | {now:6.2f} | {'' if old is None else f'{old:6.2f}':>6} |")


if __name__ == "__main__":
    main()
