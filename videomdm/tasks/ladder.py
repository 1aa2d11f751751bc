"""The ladder's tasks: build what the rungs share, train and score a recipe's rungs (each
stored the moment it finishes), write the report (table, JSON, plot)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from videomdm.models.evaluation.ladder import build_protocol, read_rungs, run_ladder, write_rung
from videomdm.models.evaluation.ladder_config import LadderConfig, LadderData, RungResult
from videomdm.models.evaluation.ladder_scores import table
from videomdm.models.viz.plots import plot_ladder

log = logging.getLogger(__name__)


@task(cache_policy=NO_CACHE)
def stored_rungs(cfg: LadderConfig, out: str) -> dict[str, RungResult]:
    """The rungs of ``cfg`` already stored under ``out`` with ``cfg``'s key."""
    key = cfg.rung_key()
    return {r: res for r, res in read_rungs(cfg, out).items() if res.key == key}


@task(cache_policy=NO_CACHE)
def ladder_protocol(cfg: LadderConfig) -> LadderData:
    """Lifters, views, text embeddings and the FID encoder (about 6 minutes on a CPU)."""
    return build_protocol(cfg)


@task(cache_policy=NO_CACHE, tags=["gpu"])
def train_rungs(
    cfg: LadderConfig, protocol: LadderData, done: dict[str, RungResult], out: str
) -> list[RungResult]:
    """Train and score the rungs of ``cfg`` not in ``done``, storing each as it finishes."""
    return list(run_ladder(cfg, protocol, done, lambda r: write_rung(r, out)).rungs)


@task(cache_policy=NO_CACHE)
def write_ladder_report(rungs: list[RungResult], out: str) -> tuple[str, str, str]:
    """``ladder.md`` (the table), ``ladder.json`` (every number) and ``ladder.png``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "ladder.md"
    md.write_text(table(rungs) + "\n")
    create_markdown_artifact(key="ladder", markdown=md.read_text())
    js = folder / "ladder.json"
    js.write_text(json.dumps([r.to_dict() for r in rungs], indent=1))
    png = plot_ladder(rungs, folder / "ladder.png")
    return str(md.resolve()), str(js.resolve()), str(png.resolve())
