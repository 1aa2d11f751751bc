"""Commands over the data: ingest, extraction, pictures, clips, tables, SQL, releases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from videomdm.cli import OutFormat, _or_exit, _print_result, _settings, app, console, err
from videomdm.config import Device, Runner
from videomdm.models.perception.config import PoseBackend


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="Folder or fsspec URI holding videos.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name.")],
):
    """Hash, probe and record every video under SOURCE in the `videos` table."""
    from videomdm.flows.ingest import ingest_flow

    s = ingest_flow(source, collection, lake=_settings().lake)
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
    from videomdm.flows.extract import extract_flow
    from videomdm.flows.runners import make_task_runner, worker_api
    from videomdm.storage.markers import DONE, FAILED, NO_PERSON

    s = _settings()
    task_runner = _or_exit(lambda: make_task_runner(runner, ray_address))
    with worker_api(task_runner):
        summary = extract_flow.with_options(task_runner=task_runner)(
            collection=collection, pose=pose, device=device, lake=s.lake
        )
    for r in summary.results:
        if r.status == FAILED:
            err.print(f"[yellow]failed[/yellow] {r.video_id}: {r.error}")
    failed = summary.count(FAILED)
    console.print(
        f"extractor {summary.extractor}: {len(summary.results)} videos, "
        f"{summary.count(DONE)} done, {summary.count(NO_PERSON)} with no person, "
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
    from videomdm.storage import open_lake
    from videomdm.tasks.render import render_overlay, render_sheet

    lake = open_lake(_settings().lake)
    if png:
        path = _or_exit(lambda: render_sheet(lake, video_id, out, extractor))
    else:
        path = _or_exit(lambda: render_overlay(lake, video_id, out, extractor, max_frames))
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
    from videomdm.flows.motion import clips_flow

    s = _settings()
    path = None if intrinsics is None else str(intrinsics)
    r = _or_exit(lambda: clips_flow(collection=collection, lake=s.lake, intrinsics=path))
    console.print(f"{r.clips} clips from {r.videos} videos ({r.producer})")


@app.command()
def tables():
    """Each lake table with its version, row count and last commit time."""
    from videomdm.storage import TABLES, open_lake

    lake = open_lake(_settings().lake)
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
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = "table",
    release: Annotated[
        str | None, typer.Option("--release", help="Every table as this release pinned it.")
    ] = None,
):
    """Query the lake with DuckDB; every table is a view (optionally at a past version)."""
    from videomdm.storage import open_lake, run_sql
    from videomdm.storage.releases import release_versions

    at_versions = _parse_at(at)  # a bad --at is a usage error (exit 2), raised before
    lake = open_lake(_settings().lake)
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
    from videomdm.storage import open_lake
    from videomdm.storage.releases import check_new_name

    lake = _settings().lake
    _or_exit(lambda: check_new_name(open_lake(lake), name))  # before a flow run starts
    r = _or_exit(lambda: release_flow(name, notes, lake=lake)).release
    pins = ", ".join(f"{t}={v} ({r.row_counts[t]} rows)" for t, v in r.table_versions.items())
    console.print(f"release {name}: {pins}")


@app.command()
def releases(fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = "table"):
    """Every release: when it was made, the table versions it pins, its row counts, notes."""
    import pyarrow as pa

    from videomdm.storage import open_lake
    from videomdm.storage.releases import list_releases

    rows = [
        {
            "name": r.name,
            "created_at": r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "",
            "versions": r.table_versions,
            "rows": r.row_counts,
            "notes": r.notes,
        }
        for r in list_releases(open_lake(_settings().lake))
    ]
    if not rows and fmt == "table":
        console.print("no releases yet; make one with `videomdm release NAME`")
        return
    _print_result(pa.Table.from_pylist(rows), fmt)
