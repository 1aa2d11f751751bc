"""Ingest throughput: files/s and MB/s for a folder of N copies of the sample videos.

Each copy gets a few distinct trailing bytes so every file has its own content hash (a real
collection has no byte-identical files; identical ones would collapse to one row).
Prints the end-to-end flow rate and, for comparison, the bare hash and probe costs.

    python benchmarks/ingest.py [--copies 20] [--videos ../shared/assets/videos]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from videomdm.models.perception.video import probe_video  # noqa: E402
from videomdm.storage.sources import list_videos, sha256_file  # noqa: E402


def make_copies(src: Path, dst: Path, copies: int) -> list[Path]:
    out = []
    for i in range(copies):
        for f in sorted(src.iterdir()):
            if f.suffix.lower() not in (".mp4", ".avi"):
                continue
            p = dst / f"{f.stem}_{i:04d}{f.suffix}"
            shutil.copy(f, p)
            with open(p, "ab") as fh:  # trailing bytes are ignored by demuxers
                fh.write(f"copy{i}".encode())
            out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=20)
    default_videos = Path(__file__).resolve().parents[2] / "shared" / "assets" / "videos"
    ap.add_argument("--videos", type=Path, default=default_videos)
    args = ap.parse_args()

    from videomdm.flows.ingest import ingest_flow

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        folder.mkdir()
        files = make_copies(args.videos, folder, args.copies)
        mb = sum(f.stat().st_size for f in files) / 1e6
        rows = []

        t = time.perf_counter()
        for f in list_videos(str(folder)):
            sha256_file(f.uri)
        rows.append(("sha256 only", time.perf_counter() - t))

        t = time.perf_counter()
        for f in files:
            probe_video(str(f))
        rows.append(("probe only (first + last frame)", time.perf_counter() - t))

        lake = str(Path(tmp) / "lake")
        empty = Path(tmp) / "empty"
        empty.mkdir()
        t = time.perf_counter()
        ingest_flow(str(empty), "bench", lake=lake)  # starts Prefect's temporary server
        startup = time.perf_counter() - t
        t = time.perf_counter()
        summary = ingest_flow(str(folder), "bench", lake=lake)
        rows.append(("ingest flow, first run", time.perf_counter() - t))
        assert summary["new"] == len(files), summary

        t = time.perf_counter()
        ingest_flow(str(folder), "bench", lake=lake)
        rows.append(("ingest flow, re-run (incremental)", time.perf_counter() - t))

    table = Table(title=f"ingest: {len(files)} files, {mb:.0f} MB ({os.cpu_count()} cores)")
    for col in ("stage", "seconds", "files/s", "MB/s"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for name, secs in rows:
        table.add_row(name, f"{secs:.2f}", f"{len(files) / secs:.1f}", f"{mb / secs:.0f}")
    Console().print(table)
    Console().print(
        f"Prefect temporary server start-up and first flow (not in the table): {startup:.1f} s"
    )


if __name__ == "__main__":
    main()
