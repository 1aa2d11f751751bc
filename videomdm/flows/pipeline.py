"""The whole pipeline as one flow: ingest -> extract -> clips -> lift -> release
(-> train -> generate), each step the existing flow run as a subflow, then a report.

Every step writes its results to the lake and skips what is already there, so re-running the
pipeline on the same collection only does the new work (and makes a new release).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from videomdm.config import get_settings
from videomdm.flows.extract import extract_flow
from videomdm.flows.ingest import ingest_flow
from videomdm.flows.motion import clips_flow, lift_flow, train_lifter_flow
from videomdm.flows.release import release_flow
from videomdm.storage import Lake
from videomdm.storage.lake import utcnow
from videomdm.storage.releases import check_new_name
from videomdm.tasks.motion import latest_run
from videomdm.tasks.report import (
    float_metrics,
    overlay_sheets,
    release_counts,
    release_prompt,
    report_markdown,
    step_rows,
    write_text,
)

log = logging.getLogger(__name__)

DEFAULT_PROMPT = "a person walks forward"


def default_release_name(collection: str) -> str:
    """``<collection>-<UTC timestamp>``, with characters a release name cannot hold replaced."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", collection).strip("-._") or "release"
    return f"{slug}-{utcnow():%Y%m%dT%H%M%SZ}"


def check_inputs(lake: str, release: str | None, mocap: list[str] | None) -> None:
    """Fail before hours of work: a taken release name, or no lifter and nothing to train one."""
    if release is not None:
        check_new_name(Lake(lake), release)
    if not mocap and latest_run(lake, "train-lifter") is None:
        raise ValueError(
            "no trained lifter in the lake and no mocap to train one: pass --mocap DIR "
            "(e.g. ../shared/assets/mocap) or run `videomdm train-lifter --mocap DIR` first"
        )


@flow(name="pipeline")
def pipeline_flow(
    source: str,
    collection: str,
    mocap: list[str] | None = None,
    train: bool = False,
    steps: int | None = None,
    out: str = "out/pipeline",
    release: str | None = None,
    lifter_steps: int | None = None,
    prompt: str | None = None,
    samples: int = 2,
    lake: str | None = None,
) -> dict[str, Any]:
    """Video folder to a release (and, with ``train``, a VideoMDM model); writes <out>/report.md."""
    lake = lake or get_settings().lake
    check_inputs(lake, release, mocap)
    done: dict[str, dict[str, Any]] = {}
    done["ingest"] = ingest_flow(source, collection, lake=lake)
    done["extract"] = extract_flow(collection=collection, lake=lake)
    done["clips"] = clips_flow(collection=collection, lake=lake)
    if latest_run(lake, "train-lifter") is None:
        assert mocap, "checked in check_inputs"
        train_lifter_flow(mocap, steps=lifter_steps, lake=lake)
    lifter = latest_run(lake, "train-lifter")
    assert lifter is not None
    done["lift"] = lift_flow(collection=collection, lake=lake)
    name = release or default_release_name(collection)
    rel = release_flow(name, notes=f"pipeline: {source} (collection {collection})", lake=lake)
    trained = None
    if train:
        trained = _train_and_generate(lake, name, collection, steps, out, prompt, samples)
    rows = step_rows(done, release_counts(lake, name, collection))
    pictures = overlay_sheets(lake, name, collection, out)
    md = report_markdown(
        out, f"VideoMDM pipeline: collection `{collection}`", rel, rows, lifter, pictures, trained
    )
    report = write_text(str(Path(out) / "report.md"), md)
    create_table_artifact(key="pipeline-steps", table=rows, description=f"Release `{name}`")
    create_markdown_artifact(key="pipeline-report", markdown=md, description=report)
    log.info("release %s; report %s", name, report)
    return {
        "release": name,
        "report": report,
        "steps": done,
        "lifter": {"run_id": lifter["run_id"], "metrics": float_metrics(lifter["metrics_json"])},
        "trained": trained,
    }


def _train_and_generate(
    lake: str,
    release: str,
    collection: str,
    steps: int | None,
    out: str,
    prompt: str | None,
    samples: int,
) -> dict[str, Any]:
    """Train VideoMDM on the release, then generate a few motions from a text."""
    from videomdm.flows.generate import generate_flow  # torch loads only when training
    from videomdm.flows.train import train_flow

    trained = train_flow(release=release, steps=steps, lake=lake)
    text = prompt or release_prompt(lake, release, collection) or DEFAULT_PROMPT
    generated = generate_flow(
        text=text, n=samples, out=str(Path(out) / "generated"), model=trained["run_id"], lake=lake
    )
    return {"train": trained, "generate": generated, "prompt": text}
