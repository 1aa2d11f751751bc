"""The ``videomdm`` command line: each command is a few lines that call a flow or the lake.

The app and its shared helpers live here; the commands, by room: ``data`` (ingest to
releases and SQL), ``motion`` (lifter and VideoMDM), ``ops`` (the pipeline and serving).
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from enum import Enum
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from videomdm.config import Settings, SettingsError, apply_process_defaults, get_settings

apply_process_defaults()  # before Prefect or torch load

app = typer.Typer(
    help="VideoMDM: 3D human motion learned from ordinary video.", no_args_is_help=True
)
# rich wraps to 80 columns when output is not a terminal; tables read better wider in logs
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


OutFormat = Literal["table", "csv", "json"]


def choice_enum(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum of ``values`` (a model's choices): typer takes a list of these, not of a
    Literal."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


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


def _or_exit(fn):
    """Run a flow; a user error (ValueError) is one red line and exit 1, not a traceback."""
    try:
        return fn()
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None


def _print_result(result, fmt: OutFormat) -> None:
    rows = result.to_pylist()
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
    elif fmt == "csv":
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


# registers the commands on ``app``
from videomdm.cli import data, motion, ops  # noqa: E402, F401
