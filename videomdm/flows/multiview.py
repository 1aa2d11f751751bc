"""The multi-view yardstick as a flow: a folder of calibrated views of one recording ingested
and extracted into the lake (the existing flows), the people triangulated, and each view in
turn lifted (and reconstructed by VideoMDM when a model is given) and scored against the
truth from the other views (``models.evaluation.multiview``)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow
from prefect.artifacts import create_table_artifact

from videomdm.config import get_settings
from videomdm.errors import UserError
from videomdm.flows.context import flow_run_id
from videomdm.flows.extract import extract_flow
from videomdm.flows.ingest import ingest_flow
from videomdm.models.evaluation.multiview import MultiviewConfig, Scene, view_index
from videomdm.models.evaluation.multiview_lift import PersonScore, ViewEvaluation
from videomdm.models.evaluation.pose_scores import mean_scores
from videomdm.models.mdm.config import GuidanceConfig
from videomdm.models.motion.clips import ClipConfig
from videomdm.storage import Lake, open_lake
from videomdm.storage.lake import utcnow
from videomdm.storage.runs import EVALUATE, Run, new_run_id, record_run
from videomdm.tasks.generate import load_model
from videomdm.tasks.multiview import (
    check_views,
    choose_lifter,
    detector_noise,
    draw_view_picture,
    find_calibration,
    lift_one_view,
    load_views,
    make_scene,
    read_calibration,
    reconstruct_view,
    write_report,
)

log = logging.getLogger(__name__)

CAMERAS = ("calibration", "default")  # the intrinsics the evaluated view is lifted with


@dataclass(frozen=True)
class MultiviewRequest:
    """What to evaluate and how (see ``evaluate_multiview_flow``)."""

    directory: str
    views: tuple[str, ...] = ()  # the views evaluated in turn (empty: every one)
    calibration: str | None = None  # default: the one calibration file in ``directory``
    lifter: str | None = None  # a lifter run id or checkpoint file (default: the newest)
    model: str | None = None  # a VideoMDM run id or checkpoint file: also reconstruct
    camera: str = "calibration"  # or "default": lifted as an ordinary video would be
    min_frames: int = 10  # shortest clip scored, at the clip frame rate
    guidance: str = "dps"
    sample_steps: int = 50
    seed: int = 0
    out: str = "out/multiview"
    collection: str | None = None  # default: multiview-<folder name>
    config: MultiviewConfig = field(default_factory=MultiviewConfig)


@dataclass(frozen=True)
class MultiviewResult:
    run_id: str
    lifter: str
    offsets: dict[str, float]  # per view, frames (view frame f shows reference time f - offset)
    quality: list[dict[str, Any]]  # the truth's quality per (view, person)
    scores: list[dict[str, Any]]  # per (view, person, method)
    summary: list[dict[str, Any]]  # per (view, method), joint-weighted over people
    pictures: dict[str, str]
    report: str  # the JSON file


@flow(name="evaluate-multiview")
def evaluate_multiview_flow(req: MultiviewRequest, lake: str | None = None) -> MultiviewResult:
    """Ingest and extract the folder's videos, match people across views and find the views'
    frame offsets, then for each view: truth from the others, the view lifted (and
    reconstructed), per-person scores, a picture; a JSON report and an ``evaluate`` run."""
    if req.camera not in CAMERAS:
        raise UserError(f"camera must be one of {CAMERAS}, got {req.camera!r}")
    lk = open_lake(lake)
    calibration = req.calibration or find_calibration(req.directory)
    cameras = read_calibration(calibration)
    check_views(req.directory, cameras, calibration)
    for name in req.views:
        view_index(list(cameras), name)  # an unknown view fails before any work
    # a missing lifter or model fails before the videos are read
    lifter, lifter_name = choose_lifter(lk, req.lifter)
    model = load_model(lk, req.model, get_settings().resolved_device()) if req.model else None
    collection = req.collection or f"multiview-{Path(req.directory).resolve().name}"
    ingest_flow(req.directory, collection, lake=lk.root)
    extract_flow(collection=collection, lake=lk.root)
    views = load_views(lk, collection, cameras, calibration)
    scene = make_scene(views, req.config)
    wanted = req.views or tuple(v.name for v in scene.views)
    clip_cfg = ClipConfig(min_frames=req.min_frames)
    evaluations, rows, pictures = [], [], {}
    for name in wanted:
        ev = lift_one_view(scene, name, lifter, req.camera == "calibration", clip_cfg, req.config)
        preds = {"lifter": [c.lifted_cam for c in ev.clips]}
        if model is not None:
            g = GuidanceConfig(kind=req.guidance, steps=req.sample_steps)  # type: ignore[arg-type]
            preds["videomdm"] = reconstruct_view(model, ev.clips, g, req.seed)
        for method, ps in preds.items():
            rows += ev.scores(method, ps)
        uri = _video_uri(lk, collection, name)
        if ev.clips:
            pictures[name] = draw_view_picture(scene, ev, preds, uri, req.out)
        evaluations.append(ev)
    return _finish(lk, req, scene, evaluations, rows, pictures, lifter_name)


def _finish(
    lk: Lake,
    req: MultiviewRequest,
    scene: Scene,
    evaluations: list[ViewEvaluation],
    rows: list[PersonScore],
    pictures: dict[str, str],
    lifter_name: str,
) -> MultiviewResult:
    """The summary rows, the JSON report, the run row and the Prefect artifact."""
    summary = []
    for view in dict.fromkeys(r.view for r in rows):
        for method in dict.fromkeys(r.method for r in rows):
            mine = [r.scores for r in rows if r.view == view and r.method == method]
            if mine:
                summary.append(PersonScore(view, -1, method, mean_scores(mine)).row())
    offsets = {v.name: float(o) for v, o in zip(scene.views, scene.offsets, strict=True)}
    quality = [q.to_dict() for ev in evaluations for q in ev.quality]
    noise = detector_noise(scene, [t for ev in evaluations for t in ev.truths])
    people = [
        {v.name: list(t) for v, t in zip(scene.views, p.tracks, strict=True)} for p in scene.people
    ]
    run_id = new_run_id()
    request = dataclasses.asdict(req)
    scores = [r.row() for r in rows]
    report = {
        "run_id": run_id,
        "request": request,
        "lifter": lifter_name,
        "offsets": offsets,
        "people": people,
        "quality": quality,
        "scores": scores,
        "summary": summary,
        "detector_noise": noise,
    }
    path = write_report(report, req.out)
    result = MultiviewResult(run_id, lifter_name, offsets, quality, scores, summary, pictures, path)
    metrics = {k: v for k, v in report.items() if k not in ("run_id", "request")}
    now = utcnow()
    run = Run(run_id, EVALUATE, request, metrics, status="ok", started_at=now, finished_at=now)
    record_run(lk, dataclasses.replace(run, flow_run_id=flow_run_id()))
    create_table_artifact(key="multiview", table=summary or [{"views": 0}])
    return result


def _video_uri(lk: Lake, collection: str, view: str) -> str:
    rows = lk.read("videos", columns=["uri", "filename", "collection"]).to_pylist()
    return next(
        r["uri"]
        for r in rows
        if r["collection"] == collection and r["filename"].split(".")[0] == view
    )


def view_means(result: MultiviewResult, method: str) -> dict[str, float]:
    """Mean over the views of each summary score of ``method`` (every view counts alike)."""
    mine = [r for r in result.summary if r["method"] == method]
    keys = ("pa_mpjpe_mm", "mpjpe_seq_mm", "n_mpjpe_mm", "mpjpe_mm", "accel_error", "scale")
    return {k: float(np.mean([r[k] for r in mine])) for k in keys} if mine else {}
