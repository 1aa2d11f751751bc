"""Commands that run the product: the whole pipeline, and serving its deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from videomdm.cli import _flow, _settings, _start_api, app, console


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
    intrinsics: Annotated[
        Path | None,
        typer.Option(help="Camera file (JSON/TOML/.qca.txt): one camera, or one per video name."),
    ] = None,
):
    """Ingest, extract, clips, lift and release (with --train: train, generate); a report."""
    from videomdm.flows.preflight import (
        check_collection,
        check_inputs,
        check_mocap,
        check_writable_lake,
    )
    from videomdm.storage import open_lake
    from videomdm.storage.sources import list_videos

    lake = _settings().lake
    lk = open_lake(lake)
    collection = check_collection(collection) or ""
    check_writable_lake(lk)
    list_videos(source)  # a missing source: one line now, not after the server starts
    check_inputs(lk, release, mocap)
    if mocap:
        check_mocap(mocap)
    _start_api()
    from videomdm.flows.pipeline import pipeline_flow

    r = _flow(
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
            intrinsics=None if intrinsics is None else str(intrinsics),
        )
    )
    console.print(f"release {r.release}; report:")
    console.print(r.report, soft_wrap=True)


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
    overrides = parse_overrides(param)
    runner_deployments(file, only, overrides)  # bad names: one line, exit 1
    require_api_url()
    serve_deployments(file, only, overrides, limit)
