"""The ``videomdm`` command line: each command is a few lines that call a flow or the lake."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from enum import Enum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("YOLO_OFFLINE", "1")

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
):
    """Query the lake with DuckDB; every table is a view (optionally at a past version)."""
    from videomdm.storage import get_lake, run_sql

    try:
        result = run_sql(get_lake(_settings().lake), query, at=_parse_at(at))
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    _print_result(result, fmt)


def _print_result(result, fmt: OutFormat) -> None:
    rows = result.to_pylist()
    if fmt is OutFormat.json:
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
    elif fmt is OutFormat.csv:
        w = csv.writer(sys.stdout)
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
