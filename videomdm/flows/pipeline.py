"""The whole pipeline as one flow: ingest -> extract -> clips -> lift -> release
(-> train -> generate), each step the existing flow run as a subflow, then a report.

Every step writes its results to the lake and skips what is already there, so re-running the
pipeline on the same collection only does the new work (and makes a new release).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from videomdm.flows.extract import ExtractSummary, extract_flow
from videomdm.flows.ingest import IngestSummary, ingest_flow
from videomdm.flows.motion import (
    ClipsSummary,
    LiftSummary,
    clips_flow,
    lift_flow,
    train_lifter_flow,
)
from videomdm.flows.preflight import check_inputs
from videomdm.flows.release import release_flow
from videomdm.storage import Lake, open_lake
from videomdm.storage.datasets import CollectionCounts
from videomdm.storage.lake import utcnow
from videomdm.storage.markers import DONE, FAILED, NO_PERSON, TOO_SHORT
from videomdm.storage.runs import LIFTER, Run, latest_run
from videomdm.tasks.render import overlay_sheets
from videomdm.tasks.report import (
    TrainedSection,
    release_counts,
    release_prompt,
    report_markdown,
    scalar_metrics,
    write_text,
)

log = logging.getLogger(__name__)

DEFAULT_PROMPT = "a person walks forward"


@dataclass(frozen=True)
class Steps:
    """What each step of one pipeline run did."""

    ingest: IngestSummary
    extract: ExtractSummary
    clips: ClipsSummary
    lift: LiftSummary


@dataclass(frozen=True)
class PipelineResult:
    release: str
    report: str  # path of report.md
    steps: Steps
    lifter: Run
    trained: TrainedSection | None


def default_release_name(collection: str) -> str:
    """``<collection>-<UTC timestamp>``, with characters a release name cannot hold replaced."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", collection).strip("-._") or "release"
    return f"{slug}-{utcnow():%Y%m%dT%H%M%SZ}"


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
    intrinsics: str | None = None,
) -> PipelineResult:
    """Video folder to a release (and, with ``train``, a VideoMDM model); writes <out>/report.md."""
    lk = open_lake(lake)
    check_inputs(lk, release, mocap)
    done = Steps(
        ingest_flow(source, collection, lake=lk.root),
        extract_flow(collection=collection, lake=lk.root),
        clips_flow(collection=collection, lake=lk.root, intrinsics=intrinsics),
        _lift(lk, collection, mocap, lifter_steps),
    )
    lifter = latest_run(lk, LIFTER)
    assert lifter is not None, "lifted with it"
    name = release or default_release_name(collection)
    rel = release_flow(name, notes=f"pipeline: {source} (collection {collection})", lake=lk.root)
    trained = (
        _train_and_generate(lk, name, collection, steps, out, prompt, samples) if train else None
    )
    rows = step_rows(done, release_counts(lk, name, collection))
    pictures = overlay_sheets(lk, name, collection, out)
    title = f"VideoMDM pipeline: collection `{collection}`"
    md = report_markdown(out, title, rel.release, rows, lifter, pictures, trained)
    report = write_text(str(Path(out) / "report.md"), md)
    create_table_artifact(key="pipeline-steps", table=rows, description=f"Release `{name}`")
    create_markdown_artifact(key="pipeline-report", markdown=md, description=report)
    log.info("release %s; report %s", name, report)
    return PipelineResult(name, report, done, lifter, trained)


def _lift(lake: Lake, collection: str, mocap: list[str] | None, steps: int | None) -> LiftSummary:
    """Lift the collection's clips, training the lifter first when the lake has none."""
    if latest_run(lake, LIFTER) is None:
        assert mocap, "checked in check_inputs"
        train_lifter_flow(mocap, steps=steps, lake=lake.root)
    return lift_flow(collection=collection, lake=lake.root)


def _train_and_generate(
    lake: Lake,
    release: str,
    collection: str,
    steps: int | None,
    out: str,
    prompt: str | None,
    samples: int,
) -> TrainedSection:
    """Train VideoMDM on the release, then generate a few motions from a text."""
    from videomdm.flows.generate import generate_flow  # torch loads only when training
    from videomdm.flows.train import train_flow
    from videomdm.models.evaluation.plausibility import describe_samples

    trained = train_flow(release=release, steps=steps, lake=lake.root)
    text = prompt or release_prompt(lake, release, collection) or DEFAULT_PROMPT
    generated = generate_flow(
        text=text, n=samples, out=str(Path(out) / "generated"), model=trained.run_id, lake=lake.root
    )
    metrics = {"step": trained.step, "loss": trained.loss, "samples": trained.samples}
    return TrainedSection(
        trained.run_id,
        trained.checkpoint,
        scalar_metrics(metrics),
        text,
        [g.animation for g in generated.motions],
        generated.player,
        describe_samples(generated.stats) if generated.stats else "",
    )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def step_rows(s: Steps, t: CollectionCounts) -> list[dict[str, str]]:
    """One row per pipeline step: what this run did and what the release holds."""
    i, e, c, m = s.ingest, s.extract, s.clips, s.lift
    return [
        {
            "step": "ingest",
            "this run": f"{_n(i.files, 'file')}: {i.new} new, {i.updated} updated, "
            f"{i.unchanged} unchanged, {i.failed} failed",
            "in the release": f"{_n(t.videos, 'video')} ({t.failed_videos} failed)",
        },
        {
            "step": "extract",
            "this run": f"{_n(len(e.results), 'video')}: {e.count(DONE)} done, "
            f"{e.count(NO_PERSON)} with no person, {e.count(TOO_SHORT)} with tracks too short, "
            f"{e.count(FAILED)} failed; "
            f"{_n(e.rows, 'row')}",
            "in the release": f"{_n(t.keypoint_rows, 'keypoint row')}, {_n(t.tracks, 'track')}",
        },
        {
            "step": "clips",
            "this run": f"{_n(c.videos, 'video')}: {_n(c.clips, 'clip')}",
            "in the release": f"{_n(t.clips, 'clip')}, {_n(t.clip_frames, 'frame')}",
        },
        {
            "step": "lift",
            "this run": f"{_n(m.videos, 'video')}: {_n(m.motions, 'motion')}",
            "in the release": _n(t.motions, "motion"),
        },
    ]
