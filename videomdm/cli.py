"""The ``videomdm`` command line: each command is a few lines that call a flow or the lake."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("YOLO_OFFLINE", "1")
# Before torch loads: idle OpenMP threads sleep instead of spinning. On shared cores spinning
# made a 2-thread training step 5.7x slower (9.4 s vs 1.65 s, benchmarks/train_step.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from videomdm.config import Settings, SettingsError, get_settings  # noqa: E402

app = typer.Typer(
    help="VideoMDM: 3D human motion learned from ordinary video.", no_args_is_help=True
)
# rich wraps to 80 columns when output is not a terminal; tables read better wider in logs
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class OutFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False):
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):  # one line per Prefect API call otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _settings()


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="Folder or fsspec URI holding videos.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name.")],
):
    """Hash, probe and record every video under SOURCE in the `videos` table."""
    from videomdm.flows.ingest import ingest_flow

    s = _settings()
    summary = ingest_flow(source, collection, lake=s.lake, storage_options=s.storage_options)
    for f in summary["failures"]:
        err.print(f"[yellow]failed[/yellow] {f['uri']}: {f['error']}")
    console.print(
        f"{summary['files']} video files: {summary['new']} new, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged, {summary['duplicates']} duplicate, "
        f"[{'red' if summary['failed'] else 'green'}]{summary['failed']} failed[/]"
    )


class PoseBackend(str, Enum):
    yolo_pose = "yolo-pose"
    vitpose = "vitpose"


class DeviceOpt(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class RunnerOpt(str, Enum):
    thread = "thread"
    ray = "ray"


@app.command()
def extract(
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    pose: Annotated[
        PoseBackend, typer.Option("--pose", help="2D pose backend.")
    ] = PoseBackend.yolo_pose,
    device: Annotated[
        DeviceOpt | None, typer.Option("--device", help="Default: the setting.")
    ] = None,
    runner: Annotated[
        RunnerOpt, typer.Option("--runner", help="Run videos on threads here, or on Ray.")
    ] = RunnerOpt.thread,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="ray://HOST:10001; default: local Ray.")
    ] = None,
):
    """Detect, track and extract 2D keypoints of every video not yet extracted."""
    from videomdm.flows.extract import extract_flow
    from videomdm.flows.runners import make_task_runner, worker_api

    s = _settings()
    task_runner = _or_exit(lambda: make_task_runner(runner.value, ray_address))
    with worker_api(task_runner):
        summary = extract_flow.with_options(task_runner=task_runner)(
            collection=collection,
            pose=pose.value,
            device=device.value if device else None,
            lake=s.lake,
        )
    for r in summary["results"]:
        if r["status"] == "failed":
            err.print(f"[yellow]failed[/yellow] {r['video_id']}: {r['error']}")
    console.print(
        f"extractor {summary['extractor']}: {summary['videos']} videos, {summary['done']} done, "
        f"{summary['no_person']} with no person, {summary['rows']} rows, "
        f"[{'red' if summary['failed'] else 'green'}]{summary['failed']} failed[/]"
    )


@app.command()
def render(
    video_id: Annotated[str, typer.Argument(help="A video_id from the videos table.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .mp4 (or .png with --png).")],
    png: Annotated[bool, typer.Option("--png", help="A contact sheet of frames instead.")] = False,
    extractor: Annotated[str | None, typer.Option(help="Default: the latest finished.")] = None,
    max_frames: Annotated[int | None, typer.Option(help="Stop the video after N frames.")] = None,
):
    """Draw boxes, track ids and skeletons over a video."""
    from videomdm.storage import get_lake
    from videomdm.tasks.render import render_overlay, render_sheet

    lake = get_lake(_settings().lake)
    if png:
        path = _or_exit(lambda: render_sheet(lake, video_id, out, extractor))
    else:
        path = _or_exit(lambda: render_overlay(lake, video_id, out, extractor, max_frames))
    console.print(f"wrote {path}")


@app.command()
def clips(collection: Annotated[str | None, typer.Option("--collection", "-c")] = None):
    """Cut extracted tracks into clean per-person clips (the `clips` table)."""
    from videomdm.flows.motion import clips_flow

    r = _or_exit(lambda: clips_flow(collection=collection, lake=_settings().lake))
    console.print(f"{r['clips']} clips from {r['videos']} videos ({r['producer']})")


@app.command("train-lifter")
def train_lifter(
    mocap: Annotated[list[str], typer.Option("--mocap", help="Mocap folder(s); repeatable.")],
    steps: Annotated[int | None, typer.Option(help="Training steps (default: config).")] = None,
    seed: int = 0,
    if_missing: Annotated[bool, typer.Option(help="Do nothing if a lifter is trained.")] = False,
):
    """Train the 2D-to-3D lifter on mocap seen through random cameras; records a run."""
    from videomdm.flows.motion import train_lifter_flow
    from videomdm.tasks.motion import latest_run

    if if_missing and (run := latest_run(_settings().lake, "train-lifter")) is not None:
        console.print(f"lifter run {run['run_id']} exists; not training another (--if-missing)")
        return

    r = _or_exit(lambda: train_lifter_flow(mocap, steps=steps, seed=seed, lake=_settings().lake))
    m = r["metrics"]
    console.print(
        f"lifter run {r['run_id']}: validation PA-MPJPE {m['pa_mpjpe_mm']:.1f} mm clean, "
        f"{m['noisy_pa_mpjpe_mm']:.1f} mm noisy; checkpoint {r['checkpoint']}"
    )


@app.command()
def lift(collection: Annotated[str | None, typer.Option("--collection", "-c")] = None):
    """Lift every clip to 3D with the current lifter (the `motions` table)."""
    from videomdm.flows.motion import lift_flow

    r = _or_exit(lambda: lift_flow(collection=collection, lake=_settings().lake))
    console.print(f"{r['motions']} motions from {r['videos']} videos ({r['lifter_id']})")


@app.command("eval-lifter")
def eval_lifter(
    mocap: Annotated[list[str], typer.Option("--mocap", help="Mocap folder(s); repeatable.")],
    split: Annotated[str, typer.Option(help="val: only clips held out in training; all.")] = "val",
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = OutFormat.table,
):
    """MPJPE, PA-MPJPE (mm) and acceleration error of the current lifter, clean and noisy 2D."""
    import pyarrow as pa

    from videomdm.flows.motion import eval_lifter_flow

    m = _or_exit(lambda: eval_lifter_flow(mocap, split=split, lake=_settings().lake))
    if fmt is OutFormat.json:
        sys.stdout.write(json.dumps(m) + "\n")
        return
    rows = [
        {
            "model": name,
            "2d": noise,
            "mpjpe_mm": m[f"{p}mpjpe_mm"],
            "pa_mpjpe_mm": m[f"{p}pa_mpjpe_mm"],
            "accel_error": m[f"{p}accel_error"],
        }
        for name, base in (("lifter", ""), ("fixed-depth baseline", "baseline_"))
        for noise, p in (("clean", base), ("noisy", base + "noisy_"))
    ]
    for r in rows:
        r.update({k: round(v, 1) for k, v in r.items() if isinstance(v, float)})
    _print_result(pa.Table.from_pylist(rows), fmt)


class Supervision(str, Enum):
    two_d = "2d"
    three_d = "3d"


class Preset(str, Enum):
    small = "small"
    paper = "paper"


@app.command()
def train(
    release: Annotated[str | None, typer.Option(help="Dataset release (default: now).")] = None,
    supervision: Annotated[Supervision, typer.Option(help="2d: VideoMDM; 3d: baseline.")] = (
        Supervision.two_d
    ),
    preset: Annotated[Preset, typer.Option(help="Model size and schedule.")] = Preset.small,
    steps: Annotated[int | None, typer.Option(help="Training steps (preset default).")] = None,
    resume: Annotated[str | None, typer.Option(help="Run id to continue exactly.")] = None,
):
    """Train VideoMDM on lifted clips; under torchrun, one rank per process (DDP)."""
    from videomdm.tasks.train import ddp_env

    s = _settings()
    rank, local_rank, world = ddp_env()
    if world > 1:  # torchrun: every rank trains, rank 0 records; no Prefect flow per rank
        result = _or_exit(lambda: _train_ddp(s, release, supervision.value, preset.value, steps,
                                             resume, rank, local_rank, world))
    else:
        from videomdm.flows.train import train_flow

        result = _or_exit(lambda: train_flow(release, supervision.value, preset.value, steps,
                                             s.lake, resume))
    if rank == 0:
        console.print(f"run {result['run_id']}: step {result['metrics']['step']}, "
                      f"loss {result['metrics']['loss']:.4g}, checkpoint {result['checkpoint']}")


def _train_ddp(s, release, supervision, preset, steps, resume, rank, local_rank, world):
    import torch
    import torch.distributed as dist

    from videomdm.tasks.train import run_training

    cuda = s.resolved_device() == "cuda"
    device = f"cuda:{local_rank}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        return run_training(s.lake, release, supervision, preset, steps, resume, device, rank,
                            world)
    finally:
        dist.destroy_process_group()


@app.command()
def generate(
    text: Annotated[str, typer.Option("--text", "-t", help="What the motion shows.")],
    n: Annotated[int, typer.Option("-n", help="Samples.")] = 4,
    seconds: Annotated[float, typer.Option(help="Length of each motion.")] = 4.0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for .npy and .gif.")] = Path(
        "out"
    ),
    model: Annotated[str | None, typer.Option(help="Run id or checkpoint file.")] = None,
    seed: int = 0,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 2.5,
):
    """Generate 3D motions from text with the newest trained VideoMDM (or --model)."""
    from videomdm.flows.generate import generate_flow

    s = _settings()
    r = _or_exit(lambda: generate_flow(text, n, seconds, str(out), model, s.lake, seed, guidance))
    for npy, gif in zip(r["npy"], r["animations"], strict=True):
        console.print(f"{npy}  {gif}")


@app.command()
def reconstruct(
    clip: Annotated[str, typer.Option("--clip", help="Clip id (see the clips table).")],
    model: Annotated[str | None, typer.Option(help="Run id or checkpoint file.")] = None,
    strength: Annotated[float, typer.Option(help="1: from noise; <1: from the lifter.")] = 1.0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write a gif here.")] = None,
    seed: int = 0,
):
    """3D motion of a clip sampled with its 2D keypoints and camera as guidance."""
    from videomdm.flows.generate import reconstruct_flow

    s = _settings()
    r = _or_exit(lambda: reconstruct_flow(clip, model, s.lake, strength, seed,
                                          str(out) if out else None))
    console.print(f"clip {clip}: {r['frames']} frames written to motions (lifter_id videomdm)"
                  + (f"; {r['animation']}" if "animation" in r else ""))


@app.command()
def evaluate(
    mocap: Annotated[list[str], typer.Option("--mocap", help="Mocap folder(s); repeatable.")],
    steps: Annotated[int | None, typer.Option(help="Training steps per model.")] = None,
    cameras: Annotated[int, typer.Option(help="Random cameras per training clip.")] = 4,
    n_generate: Annotated[int, typer.Option(help="Generated motions per model.")] = 64,
    strength: Annotated[
        list[float], typer.Option(help="Reconstruction start: 1 noise, <1 the lifter; repeatable.")
    ] = [1.0, 0.5],  # noqa: B006 - typer reads list defaults, never mutates them
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for plots.")] = Path(
        "out/eval"
    ),
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = OutFormat.table,
):
    """Lifter vs VideoMDM (2D only) vs 3D-supervised MDM on held-out mocap (known 3D)."""
    import pyarrow as pa

    from videomdm.flows.evaluate import evaluate_flow

    s = _settings()
    m = _or_exit(lambda: evaluate_flow(mocap, steps, "small", cameras, n_generate, tuple(strength),
                                       out=str(out), lake=s.lake))
    if fmt is OutFormat.json:
        sys.stdout.write(json.dumps(m, default=float) + "\n")
        return
    for part in ("reconstruction", "generation"):
        rows = [{"method": k, **{c: round(v, 3) for c, v in r.items()}}
                for k, r in m[part].items()]
        console.print(f"[bold]{part}[/bold]")
        _print_result(pa.Table.from_pylist(rows), fmt)
    console.print(f"pictures: {', '.join(m['pictures'].values())}")


def _or_exit(fn):
    """Run a flow; a user error (ValueError) is one red line and exit 1, not a traceback."""
    try:
        return fn()
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None


@app.command()
def tables():
    """Each lake table with its version, row count and last commit time."""
    from videomdm.storage import TABLES, get_lake

    lake = get_lake(_settings().lake)
    t = Table("table", "version", "rows", "last commit (UTC)", title=f"lake {lake.root}")
    for name in TABLES:
        i = lake.info(name)
        when = i.last_commit.strftime("%Y-%m-%d %H:%M:%S") if i.last_commit else "-"
        t.add_row(name, "-" if i.version is None else str(i.version), str(i.rows), when)
    console.print(t)


def _parse_at(values: list[str]) -> dict[str, int]:
    at = {}
    for v in values:
        name, sep, version = v.partition("=")
        if not sep or not version.strip().isdigit():
            raise typer.BadParameter(
                f"{v!r}: expected TABLE=VERSION, e.g. videos=3", param_hint="--at"
            )
        at[name.strip()] = int(version)
    return at


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query (DuckDB dialect).")],
    at: Annotated[list[str], typer.Option("--at", help="Pin a table: TABLE=VERSION.")] = [],  # noqa: B006
    fmt: Annotated[
        OutFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutFormat.table,
    release: Annotated[
        str | None, typer.Option("--release", help="Every table as this release pinned it.")
    ] = None,
):
    """Query the lake with DuckDB; every table is a view (optionally at a past version)."""
    from videomdm.storage import get_lake, run_sql
    from videomdm.storage.releases import release_versions

    at_versions = _parse_at(at)  # a bad --at is a usage error (exit 2), raised before
    lake = get_lake(_settings().lake)
    if release is not None:  # --at still pins single tables on top of the release
        at_versions = {**_or_exit(lambda: release_versions(lake, release)), **at_versions}
    _print_result(_or_exit(lambda: run_sql(lake, query, at=at_versions)), fmt)


@app.command("release")
def release_cmd(
    name: Annotated[str, typer.Argument(help="Release name: letters, digits, '.', '_', '-'.")],
    notes: Annotated[str | None, typer.Option("--notes", help="Free text kept with it.")] = None,
):
    """Pin every data table's current version under NAME (immutable) and announce it."""
    from videomdm.flows.release import release_flow
    from videomdm.storage import get_lake
    from videomdm.storage.releases import check_new_name

    lake = _settings().lake
    _or_exit(lambda: check_new_name(get_lake(lake), name))  # before a flow run starts
    r = _or_exit(lambda: release_flow(name, notes, lake=lake))
    pins = ", ".join(f"{t}={v} ({r['row_counts'][t]} rows)" for t, v in r["table_versions"].items())
    console.print(f"release {name}: {pins}")


@app.command()
def releases(fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = OutFormat.table):
    """Every release: when it was made, the table versions it pins, its row counts, notes."""
    import pyarrow as pa

    from videomdm.storage import get_lake
    from videomdm.storage.releases import list_releases

    rows = [
        {
            "name": r["name"],
            "created_at": r["created_at"].strftime("%Y-%m-%d %H:%M:%S"),
            "versions": r["table_versions"],
            "rows": r["row_counts"],
            "notes": r["notes"],
        }
        for r in list_releases(get_lake(_settings().lake))
    ]
    if not rows and fmt is OutFormat.table:
        console.print("no releases yet; make one with `videomdm release NAME`")
        return
    _print_result(pa.Table.from_pylist(rows), fmt)


@app.command("run")
def run_pipeline(
    source: Annotated[str, typer.Argument(help="Folder or fsspec URI holding videos.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name.")],
    train: Annotated[bool, typer.Option("--train", help="Then train VideoMDM, generate.")] = False,
    steps: Annotated[int | None, typer.Option(help="VideoMDM training steps.")] = None,
    mocap: Annotated[
        list[str], typer.Option("--mocap", help="Mocap folder(s) to train a lifter if none yet.")
    ] = [],  # noqa: B006
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path("out/pipeline"),
    release: Annotated[
        str | None, typer.Option("--release", help="Default: COLLECTION-<UTC time>.")
    ] = None,
    lifter_steps: Annotated[int | None, typer.Option(help="Lifter training steps.")] = None,
    prompt: Annotated[str | None, typer.Option(help="Text to generate from (--train).")] = None,
):
    """Ingest, extract, clips, lift and release (with --train: train, generate); a report."""
    from videomdm.flows.pipeline import check_inputs, pipeline_flow

    lake = _settings().lake
    _or_exit(lambda: check_inputs(lake, release, mocap))  # before any flow run starts
    r = _or_exit(
        lambda: pipeline_flow(
            source,
            collection,
            mocap=mocap or None,
            train=train,
            steps=steps,
            out=str(out),
            release=release,
            lifter_steps=lifter_steps,
            prompt=prompt,
            lake=lake,
        )
    )
    console.print(f"release {r['release']}; report:")
    console.print(r["report"], soft_wrap=True)


@app.command()
def serve(
    only: Annotated[
        list[str], typer.Option("--only", help="Serve only this deployment (repeatable).")
    ] = [],  # noqa: B006
    param: Annotated[
        list[str], typer.Option("--param", help="Default parameter: DEPLOYMENT.PARAM=VALUE.")
    ] = [],  # noqa: B006
    file: Annotated[Path | None, typer.Option("--file", help="Default: prefect.yaml.")] = None,
    limit: Annotated[int | None, typer.Option(help="Most flow runs at once.")] = None,
):
    """Serve prefect.yaml's deployments from this process (schedules and triggers included)."""
    from videomdm.flows.deployments import (
        parse_overrides,
        require_api_url,
        runner_deployments,
        serve_deployments,
    )

    _settings()
    overrides = _or_exit(lambda: parse_overrides(param))
    _or_exit(lambda: runner_deployments(file, only, overrides))  # bad names: one line, exit 1
    _or_exit(require_api_url)
    serve_deployments(file, only, overrides, limit)


def _print_result(result, fmt: OutFormat) -> None:
    rows = result.to_pylist()
    if fmt is OutFormat.json:
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
    elif fmt is OutFormat.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")  # \r\n breaks shell pipelines
        w.writerow(result.column_names)
        for r in rows:
            w.writerow([json.dumps(v) if isinstance(v, (list, dict)) else v for v in r.values()])
    else:
        t = Table(*result.column_names)
        for r in rows:
            t.add_row(*("" if v is None else _short(v) for v in r.values()))
        console.print(t)
        console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")


def _short(v, limit: int = 60) -> str:
    s = json.dumps(v, default=str) if isinstance(v, (list, dict)) else str(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


if __name__ == "__main__":
    app()
