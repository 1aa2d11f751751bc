"""The ``videomdm`` command line: each command is a few lines that call a flow or the lake.

The app and its shared helpers live here; the commands, by room: ``data`` (ingest to
releases and SQL), ``motion`` (lifter and VideoMDM), ``ops`` (the pipeline and serving).
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from videomdm.config import Settings, SettingsError, apply_process_defaults, get_settings
from videomdm.errors import UserError, user_error_in, user_error_names

apply_process_defaults()  # before Prefect or torch load

app = typer.Typer(
    help="VideoMDM: 3D human motion learned from ordinary video.", no_args_is_help=True
)
# rich wraps to 80 columns when output is not a terminal; tables read better wider in logs
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


OutFormat = Literal["table", "csv", "json"]


def main() -> None:
    """The console script: the app, where a user error ends the command as one red line and a
    non-zero exit (2 for a setting, 1 otherwise), never a traceback."""
    try:
        app()
    except UserError as e:
        err.print(f"[red]error:[/red] {e}", soft_wrap=True, highlight=False)
        sys.exit(2 if isinstance(e, SettingsError) else 1)


def _settings() -> Settings:
    return get_settings()  # a SettingsError is a UserError: main() prints it


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False):
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):  # one line per Prefect API call otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _settings()


class _HideUserErrors(logging.Filter):
    """Leaves out Prefect's console lines about a user error (its traceback, the failed states
    naming it): ``main()`` prints the error as one line. The Prefect API keeps every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and user_error_in(record.exc_info[1]) is not None:
            return False
        if record.levelno < logging.INFO or not record.name.startswith("prefect"):
            return True
        msg = record.getMessage()
        return not any(f"{n}:" in msg or f"{n}(" in msg for n in user_error_names())


_HIDE = _HideUserErrors()


def _start_api() -> None:
    """Before a command imports its flows: start the temporary Prefect server (unless
    ``PREFECT_API_URL`` names one), so it boots while the command loads."""
    from videomdm.flows.server import start_api

    start_api()


def _flow(fn):
    """Run a flow: wait for the Prefect API, then call ``fn``; a user error it raises reaches
    ``main()`` as one line, with Prefect's console lines about it left out."""
    from videomdm.flows.server import wait_for_api

    wait_for_api()
    for h in logging.getLogger().handlers:  # Prefect's console handler, set up when it loaded
        if _HIDE not in h.filters:
            h.addFilter(_HIDE)
    return fn()


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
