"""Evaluation with known 3D: train VideoMDM (2D only) and the 3D baseline on the same
synthetic views of mocap, score reconstructions and generations on held-out clips."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from videomdm.models.evaluation.generation import (  # noqa: E402
    diversity,
    embed,
    frechet_distance,
    motion_stats,
    train_motion_encoder,
)
from videomdm.models.evaluation.protocol import View, score_methods, synthetic_views, to_camera  # noqa: E402
from videomdm.models.mdm.data import to_body_size  # noqa: E402
from videomdm.models.mdm.denoiser import DenoiserConfig  # noqa: E402
from videomdm.models.mdm.sampling import GuidanceConfig, generate, reconstruct  # noqa: E402
from videomdm.models.mdm.text_encoder import TextEncoder  # noqa: E402
from videomdm.models.mdm.trainer import (  # noqa: E402
    TrainConfig,
    Trainer,
    load_for_sampling,
    uses_size_gauge,
)
from videomdm.models.motion.mocap import MocapClip  # noqa: E402
from videomdm.models.viz.animation import animate_motions  # noqa: E402
from videomdm.progress import progress_bar  # noqa: E402

log = logging.getLogger(__name__)

METHODS = ("lifter", "videomdm_2d", "mdm_3d")


@task(cache_policy=NO_CACHE)
def make_views(clips: list[MocapClip], lifter, cameras: int, seed: int) -> list[View]:
    """Each clip through ``cameras`` random cameras, noisy 2D, lifted."""
    return synthetic_views(clips, lifter, np.random.default_rng(seed), cameras)


@task(cache_policy=NO_CACHE, tags=["gpu"])
def train_model(
    views: list[View], supervision: str, model_cfg: DenoiserConfig, cfg: TrainConfig, device: str
) -> dict[str, Any]:
    """VideoMDM on the lifted x0 with 2D loss, or the baseline on the true x0 with 3D loss."""
    samples = [v.lifted if supervision == "2d" else v.truth for v in views]
    cond = TextEncoder(device).encode([s.text or "a person moves" for s in samples])
    cfg = dataclasses.replace(cfg, supervision=supervision)
    trainer = Trainer(samples, cond, model_cfg, cfg, device=device)
    with progress_bar(f"train {supervision}", total=cfg.steps) as advance:
        trainer.fit(progress=advance)
    return trainer.state_dict()


def _lookup(table: dict[int, np.ndarray], v: View) -> np.ndarray:
    return table[id(v)]


def _reconstructor(state: dict[str, Any], guidance: GuidanceConfig, device: str):
    model, norm, dcfg = load_for_sampling(state, device)
    window = int(state["train_config"]["window"])
    enc = TextEncoder(device)
    gauge = uses_size_gauge(state)

    def fn(v: View) -> np.ndarray:
        s = to_body_size(v.lifted) if gauge else v.lifted
        cond = torch.from_numpy(enc.encode([s.text or "a person moves"]))[0].to(device)
        out = reconstruct(model, norm, dcfg, s.joints, s.u, s.conf, s.R, s.t, cond, window,
                          guidance)  # fmt: skip
        # the same camera-frame motion, in the lifted world frame (R^T (t_gauge - t) shifted)
        return out + (s.t - v.lifted.t) @ s.R

    return fn


@task(cache_policy=NO_CACHE, tags=["gpu"])
def score_reconstruction(
    views: list[View],
    states: dict[str, dict[str, Any]],
    guidances: dict[str, GuidanceConfig],
    device: str,
) -> tuple[dict[str, dict[str, float]], dict[str, list[np.ndarray]]]:
    """MPJPE, N-MPJPE, PA-MPJPE, acceleration error on held-out views for the lifter and each model
    under each guidance (``model@suffix``), and the predictions (world joints, lifted frame)."""
    preds: dict[str, list[np.ndarray]] = {"lifter": [v.lifted.joints for v in views]}
    for name, state in states.items():
        for suffix, guidance in guidances.items():
            fn = _reconstructor(state, guidance, device)
            key = f"{name}{suffix}"
            with progress_bar(f"reconstruct {key}", total=len(views)) as advance:
                preds[key] = []
                for v in views:
                    preds[key].append(fn(v))
                    advance(1)
    by_view = {k: {id(v): p for v, p in zip(views, ps, strict=True)} for k, ps in preds.items()}
    methods: dict[str, Callable[[View], np.ndarray]] = {
        k: functools.partial(_lookup, by_view[k]) for k in preds
    }
    return score_methods(views, methods), preds


@task(cache_policy=NO_CACHE, tags=["gpu"])
def score_generation(
    train_clips: list[MocapClip],
    val_clips: list[MocapClip],
    states: dict[str, dict[str, Any]],
    n: int,
    seed: int,
    device: str,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """FID and diversity (motion encoder trained on the training split), foot skating and
    bone-length variation of ``n`` motions per model, prompted by held-out captions; the
    held-out real motions are the reference row."""
    encoder = train_motion_encoder([c.joints for c in train_clips])
    window = encoder.cfg.window
    real = [c.joints for c in val_clips if len(c.joints) >= window]
    real_emb = embed(encoder, real)
    rng = np.random.default_rng(seed)
    texts = [val_clips[i].text or "a person moves" for i in rng.integers(len(val_clips), size=n)]
    cond = torch.from_numpy(TextEncoder(device).encode(texts))
    out = {"real (held-out)": _gen_scores(real, real_emb, real_emb, encoder)}
    train_real = [c.joints for c in train_clips if len(c.joints) >= window]
    out["real (train)"] = _gen_scores(train_real, embed(encoder, train_real), real_emb, encoder)
    samples: dict[str, np.ndarray] = {}
    for name, state in states.items():
        model, norm, dcfg = load_for_sampling(state, device)
        samples[name] = generate(model, norm, dcfg, cond.to(device), n, window, 50, 2.5, seed)
        out[name] = _gen_scores(list(samples[name]), embed(encoder, list(samples[name])),
                                real_emb, encoder)  # fmt: skip
    return out, samples


def _gen_scores(motions, emb, real_emb, encoder) -> dict[str, float]:
    return {"fid": frechet_distance(emb, real_emb), "diversity": diversity(emb),
            **motion_stats(motions)}  # fmt: skip


def plot_reconstruction(scores: dict[str, dict[str, float]], path: Path) -> Path:
    """Bars of MPJPE, N-MPJPE, PA-MPJPE and acceleration error per method."""
    keys = [
        ("mpjpe_mm", "MPJPE (mm)"),
        ("n_mpjpe_mm", "N-MPJPE (mm, scale fitted)"),
        ("pa_mpjpe_mm", "PA-MPJPE (mm)"),
        ("accel_error", "accel. error (mm/frame²)"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    names = list(scores)
    for ax, (k, label) in zip(axes, keys, strict=True):
        vals = [scores[n][k] for n in names]
        ax.bar(names, vals, color=[plt.get_cmap("tab10")(i) for i in range(len(names))])
        ax.set_title(label, fontsize=10)
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle("Held-out mocap clips, noisy 2D from random cameras", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def animate_example(view: View, preds: dict[str, np.ndarray], path: Path) -> Path:
    """Truth and every method's reconstruction of one view, all in the true world frame."""

    def true_world(world_lifted: np.ndarray) -> np.ndarray:
        cam = to_camera(world_lifted, view.lifted)
        return (cam - view.truth.t) @ view.truth.R

    motions = [view.truth.joints] + [true_world(p) for p in preds.values()]
    return animate_motions(path, motions, ["truth", *preds], stride=3)
