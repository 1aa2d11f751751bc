"""Evaluation with known 3D: train VideoMDM (2D only) and the 3D baseline on the same
synthetic views of mocap, score reconstructions and generations on held-out clips."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.models.evaluation.generation import (
    diversity,
    embed,
    frechet_distance,
    train_motion_encoder,
)
from videomdm.models.evaluation.plausibility import motion_stats
from videomdm.models.evaluation.protocol import View, score_predictions, synthetic_views
from videomdm.models.lifter.network import Lifter
from videomdm.models.mdm.config import DenoiserConfig, GuidanceConfig, TrainConfig
from videomdm.models.mdm.pipeline import VideoMDM
from videomdm.models.mdm.text_encoder import TextEncoder
from videomdm.models.mdm.trainer import Trainer, write_state
from videomdm.models.motion.mocap import MocapClip
from videomdm.models.viz.plots import animate_example, play_example, plot_reconstruction
from videomdm.progress import progress_bar
from videomdm.storage.codecs import NO_CAPTION

log = logging.getLogger(__name__)

State = dict[str, Any]  # a training checkpoint (``Trainer.state_dict``)


@task(cache_policy=NO_CACHE)
def make_views(clips: list[MocapClip], lifter: Lifter, cameras: int, seed: int) -> list[View]:
    """Each clip through ``cameras`` random cameras, noisy 2D, lifted."""
    return synthetic_views(clips, lifter, np.random.default_rng(seed), cameras)


@task(cache_policy=NO_CACHE, tags=["gpu"])
def train_model(
    views: list[View], supervision: str, model_cfg: DenoiserConfig, cfg: TrainConfig, device: str
) -> State:
    """VideoMDM on the lifted x0 with 2D loss, or the baseline on the true x0 with 3D loss."""
    samples = [v.lifted if supervision == "2d" else v.truth for v in views]
    cond = TextEncoder(device).encode([s.text or NO_CAPTION for s in samples])
    cfg = dataclasses.replace(cfg, supervision=supervision)  # type: ignore[arg-type]
    trainer = Trainer(samples, cond, model_cfg, cfg, device=device)
    with progress_bar(f"train {supervision}", total=cfg.steps) as advance:
        trainer.fit(progress=advance)
    return trainer.state_dict()


@task(cache_policy=NO_CACHE)
def save_models(states: dict[str, State], out_dir: str) -> list[str]:
    """Each model's checkpoint as ``<out_dir>/<name>.pt``, to study sampling without retraining."""
    paths = []
    for name, state in states.items():
        path = Path(out_dir) / f"{name}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_state(state, str(path))
        paths.append(str(path))
    return paths


@task(cache_policy=NO_CACHE, tags=["gpu"])
def score_reconstruction(
    views: list[View], states: dict[str, State], guidances: dict[str, GuidanceConfig], device: str
) -> tuple[dict[str, dict[str, float]], dict[str, list[np.ndarray]]]:
    """MPJPE, N-MPJPE, PA-MPJPE, acceleration error on held-out views for the lifter and each model
    under each guidance (``model<suffix>``), and the predictions (world joints, lifted frame)."""
    preds: dict[str, list[np.ndarray]] = {"lifter": [v.lifted.joints for v in views]}
    for name, state in states.items():
        model = VideoMDM.from_checkpoint(state, device, name)
        for suffix, guidance in guidances.items():
            key = f"{name}{suffix}"
            with progress_bar(f"reconstruct {key}", total=len(views)) as advance:
                preds[key] = []
                for v in views:
                    preds[key].append(model.reconstruct(v.lifted, guidance).in_world_of(v.lifted))
                    advance(1)
    return score_predictions(views, preds), preds


@task(cache_policy=NO_CACHE, tags=["gpu"])
def score_generation(
    train_clips: list[MocapClip],
    val_clips: list[MocapClip],
    states: dict[str, State],
    n: int,
    seed: int,
    device: str,
) -> dict[str, dict[str, float]]:
    """FID and diversity (motion encoder trained on the training split), foot skating and
    bone-length variation of ``n`` motions per model, prompted by held-out captions; the
    held-out real motions are the reference row."""
    encoder = train_motion_encoder([c.joints for c in train_clips])
    window = encoder.cfg.window
    real = [c.joints for c in val_clips if len(c.joints) >= window]
    real_emb = embed(encoder, real)
    rng = np.random.default_rng(seed)
    texts = [val_clips[i].text or NO_CAPTION for i in rng.integers(len(val_clips), size=n)]

    def scores(motions: list[np.ndarray]) -> dict[str, float]:
        emb = embed(encoder, motions)
        return {
            "fid": frechet_distance(emb, real_emb),
            "diversity": diversity(emb),
            **motion_stats(motions),
        }

    out = {"real (held-out)": scores(real)}
    out["real (train)"] = scores([c.joints for c in train_clips if len(c.joints) >= window])
    for name, state in states.items():
        model = VideoMDM.from_checkpoint(state, device, name)
        out[name] = scores(list(model.generate(texts, seconds=window / model.fps, seed=seed)))
    return out


@task(cache_policy=NO_CACHE)
def draw_evaluation(
    recon: dict[str, dict[str, float]], view: View, preds: dict[str, np.ndarray], out_dir: str
) -> dict[str, str]:
    """The score bars and one held-out clip animated with every method's reconstruction."""
    out = Path(out_dir)
    return {
        "reconstruction": str(plot_reconstruction(recon, out / "eval_reconstruction.png")),
        "example": str(animate_example(view, preds, out / "eval_example.gif")),
        "player": str(play_example(view, preds, out / "eval_example.html")),
    }
