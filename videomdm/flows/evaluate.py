"""Evaluation flow: lifter vs VideoMDM (2D only) vs the 3D-supervised baseline, known 3D."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from videomdm.config import get_settings, preset
from videomdm.errors import UserError
from videomdm.flows.context import flow_run_id
from videomdm.flows.motion import lifter_config
from videomdm.models.evaluation.protocol import PROTOCOL_LIFTER
from videomdm.models.lifter.network import Lifter
from videomdm.models.lifter.train import split_by_clip, split_by_source
from videomdm.models.mdm.config import GuidanceConfig
from videomdm.models.motion.mocap import MocapClip
from videomdm.storage import Lake, open_lake
from videomdm.storage.lake import utcnow
from videomdm.storage.runs import EVALUATE, Run, new_run_id, record_run
from videomdm.tasks.evaluate import (
    draw_evaluation,
    make_views,
    save_models,
    score_generation,
    score_reconstruction,
    train_model,
)
from videomdm.tasks.lifter import current_lifter, fit_lifter, load_lifter, load_mocap, score_lifter

log = logging.getLogger(__name__)

Scores = dict[str, dict[str, float]]  # method -> metric -> value
MODELS = {"videomdm_2d": "2d", "mdm_3d": "3d"}  # the models compared, and their supervision


@dataclass(frozen=True)
class EvaluationConfig:
    """The protocol's knobs (see ``evaluate_flow``)."""

    steps: int | None = None  # training steps per model (the preset's by default)
    preset: str = "small"
    cameras: int = 4  # random cameras per training clip
    n_generate: int = 64  # generated motions per model (0: no generation scores)
    strengths: tuple[float, ...] = (1.0, 0.5)  # reconstruction starts (1: noise)
    guidances: tuple[str, ...] = ("dps", "adam")
    sample_steps: int = 50  # DDIM steps per reconstruction
    seed: int = 0
    target_source: str | None = None  # off-domain protocol: the source scored
    lifter_steps: int | None = None  # off-domain protocol: the lifter's training steps


@dataclass(frozen=True)
class LifterChoice:
    """The protocol's lifter, its split of the clips, and what the run records of it."""

    lifter: Lifter
    train: list[MocapClip]
    val: list[MocapClip]
    config: dict[str, Any] = field(default_factory=dict)  # merged into the run's config
    metrics: dict[str, Any] = field(default_factory=dict)  # merged into the run's metrics


@dataclass(frozen=True)
class EvaluationResult:
    run_id: str
    reconstruction: Scores
    generation: Scores
    pictures: dict[str, str]
    train_clips: int
    val_clips: int
    views: int
    lifter: dict[str, Any]  # the off-domain lifter's own scores, when one was trained


@flow(name="evaluate-videomdm")
def evaluate_flow(
    mocap: list[str],
    config: EvaluationConfig = EvaluationConfig(),
    out: str = "out/eval",
    lake: str | None = None,
) -> EvaluationResult:
    """Mocap -> random cameras -> noisy 2D -> a lifter; train VideoMDM on the 2D and the
    baseline on the true 3D of the training clips; score on held-out clips.

    By default the lifter is the current one (trained on the same sources: in-domain) and the
    clips are split as it split them. With ``config.target_source`` the lifter is pretrained
    here on every *other* source, as the paper's lifter was pretrained on other data, and
    VideoMDM trains and is scored on the target source's clips (split by clip)."""
    c, lk, device = config, open_lake(lake), get_settings().resolved_device()
    clips = load_mocap(mocap, 30.0)
    chosen = _in_domain(clips, lk) if c.target_source is None else _off_domain(clips, c)
    model_cfg, cfg = preset(c.preset, "2d", c.steps)
    cfg = dataclasses.replace(cfg, seed=c.seed)
    views = make_views(chosen.train, chosen.lifter, c.cameras, c.seed)
    states = {
        name: train_model(views, supervision, model_cfg, cfg, device)
        for name, supervision in MODELS.items()
    }
    save_models(states, out)
    val_views = make_views(chosen.val, chosen.lifter, 1, c.seed + 1)
    recon, preds = score_reconstruction(val_views, states, _guidances(c), device)
    gen: Scores = {}
    if c.n_generate:
        gen = score_generation(chosen.train, chosen.val, states, c.n_generate, c.seed, device)
    pictures = draw_evaluation(recon, val_views[0], {k: p[0] for k, p in preds.items()}, out)
    result = EvaluationResult(
        new_run_id(),
        recon,
        gen,
        pictures,
        len(chosen.train),
        len(chosen.val),
        len(views),
        chosen.metrics,
    )
    run_config = {"train": dataclasses.asdict(cfg), **dataclasses.asdict(c), **chosen.config}
    record_run(
        lk,
        Run(
            result.run_id,
            EVALUATE,
            run_config,
            dataclasses.asdict(result),
            status="ok",
            started_at=utcnow(),
            finished_at=utcnow(),
            flow_run_id=flow_run_id(),
        ),
    )
    create_table_artifact(key="evaluation", table=[{"method": k, **v} for k, v in recon.items()])
    return result


def _guidances(c: EvaluationConfig) -> dict[str, GuidanceConfig]:
    """``" <kind>[@strength]"``: the guidance of each reconstruction scored."""
    return {
        f" {kind}" + ("" if g == 1.0 else f"@{g:g}"): GuidanceConfig(
            kind=kind,  # type: ignore[arg-type]
            strength=g,
            steps=c.sample_steps,
        )
        for kind in c.guidances
        for g in c.strengths
    }


def _in_domain(clips: list[MocapClip], lake: Lake) -> LifterChoice:
    """The current lifter and the clips split as it split them."""
    run = current_lifter(lake)
    held_out = set(run.metrics.get("val_clips", []))
    train = [c for c in clips if c.name not in held_out]
    val = [c for c in clips if c.name in held_out]
    if not val:
        raise UserError("none of these mocap clips was held out by the current lifter")
    lifter, _ = load_lifter(run)
    return LifterChoice(lifter, train, val, {"lifter_run": run.run_id})


def _off_domain(clips: list[MocapClip], c: EvaluationConfig) -> LifterChoice:
    """A lifter trained here on every other source, and the target's clips split by clip."""
    assert c.target_source is not None
    others, target = split_by_source(clips, c.target_source)
    o_train, o_val = split_by_clip(others, seed=c.seed)
    lcfg = lifter_config(c.lifter_steps, PROTOCOL_LIFTER)  # the noise of the protocol's views
    lifter, _ = fit_lifter(o_train, o_val, lcfg, c.seed)
    scores = score_lifter(lifter, o_val, lcfg, c.seed)
    train, val = split_by_clip(target, seed=c.seed)
    config = {"lifter_steps": lcfg.steps}
    return LifterChoice(lifter, train, val, config, {"lifter_on_other_sources": scores})
