"""Evaluation flow: lifter vs VideoMDM (2D only) vs the 3D-supervised baseline, known 3D."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

import torch
from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from videomdm.config import get_settings
from videomdm.flows.motion import current_lifter, fit_lifter, lifter_config, load_mocap
from videomdm.models.lifter.network import Lifter
from videomdm.models.lifter.network import load_checkpoint as load_lifter
from videomdm.models.lifter.train import split_by_clip, split_by_source
from videomdm.models.mdm.sampling import GuidanceConfig
from videomdm.models.motion.mocap import MocapClip
from videomdm.storage.lake import utcnow
from videomdm.storage.sources import local_path
from videomdm.tasks.evaluate import (
    animate_example,
    make_views,
    plot_reconstruction,
    score_generation,
    score_reconstruction,
    train_model,
)
from videomdm.tasks.motion import new_run_id, record_run
from videomdm.tasks.train import presets

log = logging.getLogger(__name__)


@flow(name="evaluate-videomdm")
def evaluate_flow(
    mocap: list[str],
    steps: int | None = None,
    preset: str = "small",
    cameras: int = 4,
    n_generate: int = 64,
    strengths: tuple[float, ...] = (1.0, 0.5),
    seed: int = 0,
    guidances: tuple[str, ...] = ("dps", "adam"),
    out: str = "out/eval",
    lake: str | None = None,
    target_source: str | None = None,
    lifter_steps: int | None = None,
    sample_steps: int = 50,
) -> dict[str, Any]:
    """Mocap -> random cameras -> noisy 2D -> a lifter; train VideoMDM on the 2D and the
    baseline on the true 3D of the training clips; score on held-out clips.

    By default the lifter is the current one (trained on the same sources: in-domain) and the
    clips are split as it split them. With ``target_source`` the lifter is pretrained here on
    every *other* source (``lifter_steps``), as the paper's lifter was pretrained on other
    data, and VideoMDM trains and is scored on the target source's clips (split by clip).
    ``n_generate=0`` skips the generation scores; ``sample_steps`` are the DDIM steps of each
    reconstruction."""
    s = get_settings()
    lake, device = lake or s.lake, s.resolved_device()
    clips = load_mocap(mocap, 30.0)
    chosen = (
        _in_domain(clips, lake)
        if target_source is None
        else _off_domain(clips, target_source, lifter_steps, seed)
    )
    lifter, train, val = chosen.lifter, chosen.train, chosen.val
    model_cfg, cfg = presets(preset, "2d", steps)
    cfg = dataclasses.replace(cfg, seed=seed)
    views = make_views(train, lifter, cameras, seed)
    states = {
        "videomdm_2d": train_model(views, "2d", model_cfg, cfg, device),
        "mdm_3d": train_model(views, "3d", model_cfg, cfg, device),
    }
    val_views = make_views(val, lifter, 1, seed + 1)
    out_dir = Path(out)
    for name, state in states.items():  # kept, to study sampling without retraining
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(state, out_dir / f"{name}.pt")
    configs = {
        f" {kind}" + ("" if g == 1.0 else f"@{g:g}"): GuidanceConfig(
            kind=kind, strength=g, steps=sample_steps
        )
        for kind in guidances
        for g in strengths
    }
    recon, preds = score_reconstruction(val_views, states, configs, device)
    gen = score_generation(train, val, states, n_generate, seed, device)[0] if n_generate else {}
    pictures = {
        "reconstruction": str(plot_reconstruction(recon, out_dir / "eval_reconstruction.png")),
        "example": str(
            animate_example(
                val_views[0], {k: p[0] for k, p in preds.items()}, out_dir / "eval_example.gif"
            )
        ),
    }
    metrics = {
        "reconstruction": recon,
        "generation": gen,
        "pictures": pictures,
        "train_clips": len(train),
        "val_clips": len(val),
        "views": len(views),
        **chosen.metrics,
    }
    record_run(
        lake,
        dict(
            run_id=new_run_id(),
            kind="evaluate",
            config_json={
                "preset": preset,
                "train": dataclasses.asdict(cfg),
                "cameras": cameras,
                "strengths": list(strengths),
                "guidances": list(guidances),
                **chosen.config,
                "n_generate": n_generate,
                "sample_steps": sample_steps,
            },
            metrics_json=metrics,
            status="ok",
            started_at=utcnow(),
            finished_at=utcnow(),
            flow_run_id=str(flow_run.id) if flow_run.id else None,
        ),
    )
    create_table_artifact(key="evaluation", table=[{"method": k, **v} for k, v in recon.items()])
    return metrics


class LifterChoice(NamedTuple):
    """The protocol's lifter, its split of the clips, and what the run records of it."""

    lifter: Lifter
    train: list[MocapClip]
    val: list[MocapClip]
    config: dict[str, Any]  # merged into the run's config
    metrics: dict[str, Any]  # merged into the run's metrics


def _in_domain(clips: list[MocapClip], lake: str) -> LifterChoice:
    """The current lifter and the clips split as it split them."""
    run = current_lifter(lake)
    held_out = set(json.loads(run["metrics_json"]).get("val_clips", []))
    train = [c for c in clips if c.name not in held_out]
    val = [c for c in clips if c.name in held_out]
    if not val:
        raise ValueError("none of these mocap clips was held out by the current lifter")
    with local_path(run["checkpoint_uri"]) as path:
        lifter, _, _ = load_lifter(path)
    return LifterChoice(lifter, train, val, {"lifter_run": run["run_id"]}, {})


def _off_domain(
    clips: list[MocapClip], target_source: str, lifter_steps: int | None, seed: int
) -> LifterChoice:
    """A lifter trained here on every other source, and the target's clips split by clip."""
    others, target = split_by_source(clips, target_source)
    o_train, o_val = split_by_clip(others, seed=seed)
    lcfg = lifter_config(lifter_steps)
    lifter, _, scores = fit_lifter(o_train, o_val, lcfg, seed)
    train, val = split_by_clip(target, seed=seed)
    config = {"target_source": target_source, "lifter_steps": lcfg.steps}
    return LifterChoice(lifter, train, val, config, {"lifter_on_other_sources": scores})
