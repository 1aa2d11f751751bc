"""Commands over the data: ingest, extraction, pictures, clips, tables, SQL, releases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from videomdm.cli import OutFormat, _flow, _print_result, _settings, _start_api, app, console, err
from videomdm.config import Device, Runner
from videomdm.errors import UserError
from videomdm.models.perception.config import PoseBackend


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="Folder or fsspec URI holding videos.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name.")],
):
    """Hash, probe and record every video under SOURCE in the `videos` table."""
    from videomdm.flows.ingest import IngestSummary
    from videomdm.flows.preflight import check_collection, check_writable_lake, plan_ingest
    from videomdm.storage import open_lake

    lake = open_lake(_settings().lake)
    collection = check_collection(collection) or ""
    check_writable_lake(lake)
    plan = plan_ingest(lake, source, collection)
    if plan.todo == 0:  # a no-op needs no flow run
        _ingest_summary(IngestSummary(files=plan.files, unchanged=plan.files))
        return
    _start_api()
    from videomdm.flows.ingest import ingest_flow

    _ingest_summary(_flow(lambda: ingest_flow(source, collection, lake=lake.root)))


def _ingest_summary(s) -> None:
    for f in s.failures:
        err.print(f"[yellow]failed[/yellow] {f.uri}: {f.error}")
    console.print(
        f"{s.files} video files: {s.new} new, {s.updated} updated, {s.unchanged} unchanged, "
        f"{s.duplicates} duplicate, [{'red' if s.failed else 'green'}]{s.failed} failed[/]"
    )


@app.command()
def extract(
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    pose: Annotated[PoseBackend, typer.Option("--pose", help="2D pose backend.")] = "yolo-pose",
    device: Annotated[Device | None, typer.Option("--device", help="Default: the setting.")] = None,
    runner: Annotated[
        Runner, typer.Option("--runner", help="Run videos on threads here, or on Ray.")
    ] = "thread",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="ray://HOST:10001; default: local Ray.")
    ] = None,
):
    """Detect, track and extract 2D keypoints of every video not yet extracted."""
    from videomdm.flows.preflight import check_collection, check_writable_lake, plan_extract
    from videomdm.storage import open_lake

    s = _settings()
    lake = open_lake(s.lake)
    collection = check_collection(collection)
    check_writable_lake(lake)
    device = device or s.device
    plan = plan_extract(
        lake, s, pose, s.resolved_device() if device == "auto" else device, collection
    )
    if not plan.jobs:  # a no-op needs no flow run
        console.print(f"extractor {plan.extractor}: every video is extracted already")
        return
    _start_api()
    from videomdm.flows.extract import extract_flow
    from videomdm.flows.runners import make_task_runner, worker_api

    task_runner = make_task_runner(runner, ray_address)
    with worker_api(task_runner):
        summary = _flow(
            lambda: extract_flow.with_options(task_runner=task_runner)(  # type: ignore[arg-type]  # Prefect 3.8 stubs
                collection=collection, pose=pose, device=device, lake=lake.root
            )
        )
    _extract_summary(summary)


def _extract_summary(summary) -> None:
    from videomdm.storage.markers import DONE, FAILED, NO_PERSON, TOO_SHORT

    for r in summary.results:
        if r.status == FAILED:
            err.print(f"[yellow]failed[/yellow] {r.video_id}: {r.error}")
    failed = summary.count(FAILED)
    console.print(
        f"extractor {summary.extractor}: {len(summary.results)} videos, "
        f"{summary.count(DONE)} done, {summary.count(NO_PERSON)} with no person, "
        f"{summary.count(TOO_SHORT)} with tracks too short, "
        f"{summary.rows} rows, [{'red' if failed else 'green'}]{failed} failed[/]"
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
    from videomdm.flows.preflight import check_lake_exists
    from videomdm.storage import open_lake
    from videomdm.tasks.render import render_overlay, render_sheet

    lake = open_lake(_settings().lake)
    check_lake_exists(lake)
    if png:
        path = render_sheet(lake, video_id, out, extractor)
    else:
        path = render_overlay(lake, video_id, out, extractor, max_frames)
    console.print(f"wrote {path}")


@app.command()
def clips(
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    intrinsics: Annotated[
        Path | None,
        typer.Option(help="Camera file (JSON/TOML/.qca.txt): one camera, or one per video name."),
    ] = None,
):
    """Cut extracted tracks into clean per-person clips (the `clips` table)."""
    from videomdm.flows.preflight import check_collection, check_extracted, check_lake_exists
    from videomdm.storage import open_lake

    lake = open_lake(_settings().lake)
    collection = check_collection(collection)
    check_lake_exists(lake)
    check_extracted(lake)
    _start_api()
    from videomdm.flows.motion import clips_flow

    path = None if intrinsics is None else str(intrinsics)
    r = _flow(lambda: clips_flow(collection=collection, lake=lake.root, intrinsics=path))
    console.print(f"{r.clips} clips from {r.videos} videos ({r.producer})")


@app.command()
def tables():
    """Each lake table with its version, row count and last commit time."""
    from videomdm.flows.preflight import check_lake_exists
    from videomdm.storage import TABLES, open_lake

    lake = open_lake(_settings().lake)
    check_lake_exists(lake)
    t = Table("table", "version", "rows", "last commit (UTC)", title=f"lake {lake.root}")
    for name in TABLES:
        i = lake.info(name)
        when = i.last_commit.strftime("%Y-%m-%d %H:%M:%S") if i.last_commit else "-"
        t.add_row(name, "-" if i.version is None else str(i.version), str(i.rows), when)
    console.print(t)


def _parse_at(values: list[str]) -> dict[str, int]:
    from videomdm.storage.query import MAX_VERSION

    at = {}
    for v in values:
        name, sep, version = v.partition("=")
        if not sep or not version.strip().isdigit():
            raise typer.BadParameter(
                f"{v!r}: expected TABLE=VERSION, e.g. videos=3", param_hint="--at"
            )
        if int(version) > MAX_VERSION:
            raise typer.BadParameter(
                f"{v!r}: version {version.strip()} is too large (at most {MAX_VERSION})",
                param_hint="--at",
            )
        at[name.strip()] = int(version)
    return at


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="Read-only SQL (DuckDB dialect); ';' separates.")],
    at: Annotated[list[str], typer.Option("--at", help="Pin a table: TABLE=VERSION.")] = [],  # noqa: B006
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = "table",
    release: Annotated[
        str | None, typer.Option("--release", help="Every table as this release pinned it.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop the query after this many seconds (0: never).")
    ] = 600.0,
):
    """Query the lake with DuckDB; every table is a view (optionally at a past version).

    The connection reads only the lake's files; Ctrl-C or --timeout stop a query."""
    from videomdm.flows.preflight import check_lake_exists
    from videomdm.storage import open_lake
    from videomdm.storage.query import run_statements
    from videomdm.storage.releases import release_versions

    at_versions = _parse_at(at)  # a bad --at is a usage error (exit 2), raised before
    lake = open_lake(_settings().lake)
    check_lake_exists(lake)
    if release is not None:  # --at still pins single tables on top of the release
        at_versions = {**release_versions(lake, release), **at_versions}
    try:
        results = run_statements(lake, query, at=at_versions, timeout_s=timeout or None)
    except KeyboardInterrupt:  # Ctrl-C: the query was interrupted, not left running
        err.print("[red]interrupted[/red]: the query was stopped")
        raise typer.Exit(130) from None
    if len(results) > 1 and fmt != "table":
        raise UserError(f"--format {fmt} prints one result: give one statement, not {len(results)}")
    for r in results:
        if len(results) > 1:
            console.print(f"[bold]{r.sql}[/bold]", soft_wrap=True, highlight=False)
        _print_result(r.table, fmt)


@app.command("release")
def release_cmd(
    name: Annotated[str, typer.Argument(help="Release name: letters, digits, '.', '_', '-'.")],
    notes: Annotated[str | None, typer.Option("--notes", help="Free text kept with it.")] = None,
):
    """Pin every data table's current version under NAME (immutable) and announce it."""
    from videomdm.flows.preflight import check_lake_exists
    from videomdm.storage import open_lake
    from videomdm.storage.releases import check_new_name

    lake = open_lake(_settings().lake)
    check_lake_exists(lake)
    check_new_name(lake, name)  # before a flow run starts
    _start_api()
    from videomdm.flows.release import release_flow

    r = _flow(lambda: release_flow(name, notes, lake=lake.root)).release
    pins = ", ".join(f"{t}={v} ({r.row_counts[t]} rows)" for t, v in r.table_versions.items())
    console.print(f"release {name}: {pins}")


@app.command()
def releases(fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = "table"):
    """Every release: when it was made, the table versions it pins, its row counts, notes."""
    import pyarrow as pa

    from videomdm.flows.preflight import check_lake_exists
    from videomdm.storage import open_lake
    from videomdm.storage.releases import list_releases

    lake = open_lake(_settings().lake)
    check_lake_exists(lake)
    rows = [
        {
            "name": r.name,
            "created_at": r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "",
            "versions": r.table_versions,
            "rows": r.row_counts,
            "notes": r.notes,
        }
        for r in list_releases(lake)
    ]
    if not rows and fmt == "table":
        console.print("no releases yet; make one with `videomdm release NAME`")
        return
    _print_result(pa.Table.from_pylist(rows), fmt)
