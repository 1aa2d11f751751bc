"""Pipeline report tasks: a collection's counts at a release, a prompt, the markdown report."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.storage import Lake
from videomdm.storage.datasets import CollectionCounts, collection_counts, common_caption
from videomdm.storage.releases import Release
from videomdm.storage.runs import Run
from videomdm.tasks.retry import transient_only

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedSection:
    """What the report shows of a VideoMDM run trained by the pipeline."""

    run_id: str
    checkpoint: str
    metrics: dict[str, float]
    prompt: str
    animations: list[str] = field(default_factory=list)
    player: str | None = None  # HTML player of the generated samples
    samples: str = ""  # the samples described (speed, bones, how much seeds differ)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def release_counts(lake: Lake, release: str, collection: str) -> CollectionCounts:
    """Rows of one collection in each table, as the release pinned them."""
    return collection_counts(lake, release, collection)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def release_prompt(lake: Lake, release: str, collection: str) -> str | None:
    """The commonest clip caption of the collection in the release (a text to generate from)."""
    return common_caption(lake, release, collection)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def write_text(path: str, text: str) -> str:
    """Write a text file (creating its folder); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return str(p)


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The scalar metrics of a run, rounded (integers stay integers), for a table."""
    return {
        k: int(v) if float(v).is_integer() else round(float(v), 3)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def lifter_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Lifter metrics beside the fixed-depth baseline's (``baseline_<name>``) where it has one."""
    m = scalar_metrics(metrics)
    return [
        {"metric": k, "lifter": v, "fixed-depth baseline": m.get(f"baseline_{k}", "")}
        for k, v in m.items()
        if not k.startswith("baseline_")
    ]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(none)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def report_markdown(
    out_dir: str,
    title: str,
    release: Release,
    steps: Sequence[Mapping[str, Any]],
    lifter: Run,
    pictures: Sequence[tuple[str, str]],
    trained: TrainedSection | None,
) -> str:
    """The pipeline report: release, counts per step, lifter and training metrics, pictures."""
    pins = ", ".join(f"`{t}`={v}" for t, v in release.table_versions.items())
    parts = [
        f"# {title}\n",
        f"Release **`{release.name}`** pins {pins}. Query it with "
        f'`videomdm sql "..." --release {release.name}`.\n',
        "## Steps\n",
        markdown_table(steps),
        f"## Lifter `{lifter.run_id}`\n",
        "Validation on held-out mocap seen through random cameras (errors in mm).\n",
        markdown_table(lifter_rows(lifter.metrics)),
    ]
    if trained is not None:
        parts += [
            f"## VideoMDM run `{trained.run_id}`\n",
            f"Trained on release `{release.name}`; checkpoint `{trained.checkpoint}`.\n",
            markdown_table([{"metric": k, "value": v} for k, v in trained.metrics.items()]),
            f'### Generated from "{trained.prompt}"\n',
            *(
                [f"{len(trained.animations)} samples of one prompt: {trained.samples}.\n"]
                if trained.samples
                else []
            ),
            *(
                [
                    f"[Open the samples in the 3D player]({_rel(trained.player, out_dir)}) "
                    "(one HTML file: rotate, zoom, play, scrub; works offline).\n"
                ]
                if trained.player
                else []
            ),
            *[f"![generated {i}]({_rel(p, out_dir)})\n" for i, p in enumerate(trained.animations)],
        ]
    parts.append("## Keypoints over the videos\n")
    parts += [f"### {name}\n\n![{name}]({_rel(p, out_dir)})\n" for name, p in pictures]
    return "\n".join(parts)


def _rel(path: str, start: str) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()
