"""One progress bar helper for every long step (rich; quiet when output is not a terminal)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextlib.contextmanager
def progress_bar(label: str, total: int, completed: int = 0) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; the bar shows done/total and the time remaining."""
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as progress:
        task_id = progress.add_task(label, total=total, completed=completed)
        yield lambda n: progress.advance(task_id, n)
