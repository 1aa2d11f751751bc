"""Scoring one trained rung of the ladder (``ladder.py``): does x0_hat read a clean held-out
input noised to small t (``probe_x0``), guided reconstruction of each lifter's held-out views,
and generation (FID, diversity, within-prompt diversity, bone-length variation, joint speed);
and the table of those scores (``COLUMNS``, ``table``)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from videomdm.models.evaluation.generation import diversity, embed, frechet_distance, load_encoder
from videomdm.models.evaluation.ladder_config import LadderConfig, LadderData, RungResult
from videomdm.models.evaluation.plausibility import (
    bone_length_variation,
    joint_speed,
    pairwise_distance,
    root_relative,
)
from videomdm.models.evaluation.protocol import score_predictions
from videomdm.models.mdm.config import GuidanceConfig
from videomdm.models.mdm.pipeline import NO_CAPTION, VideoMDM
from videomdm.models.mdm.schedulers import Scheduler
from videomdm.models.mdm.text_encoder import TextEncoder
from videomdm.models.motion.features import canonicalize, features_to_joints, joints_to_features
from videomdm.models.motion.skeleton import body_size_factor


class _FixedText(TextEncoder):
    """The protocol's text embeddings, without loading the sentence model."""

    def __init__(self, table: Mapping[str, np.ndarray]):
        super().__init__()
        self.table = table

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def _probe_windows(data: LadderData, window: int) -> tuple[np.ndarray, list[str]]:
    """Clean held-out windows ``(N, window, 17, 3)`` (start and middle of each clip)."""
    wins, texts = [], []
    for v in data.val["in"]:
        j = v.truth.joints
        for s in sorted({0, max(0, (len(j) - window) // 2)}):
            if len(j) - s >= window:
                wins.append(j[s : s + window])
                texts.append(v.truth.text or NO_CAPTION)
    return np.stack(wins).astype(np.float64), texts


@torch.no_grad()
def probe_x0(mdm: VideoMDM, data: LadderData, ts: Sequence[int]) -> dict[str, float]:
    """Root-relative joint error (mm) of x0_hat against a clean held-out input noised to
    each ``t`` (``err_tN``), and of returning the input, x_t / sqrt(abar) (``copy_tN``). A
    model trained in the body-size gauge is probed in it."""
    cfg = mdm.train_config
    wins, texts = _probe_windows(data, cfg.window)
    if cfg.size_gauge and cfg.supervision == "2d":
        wins = np.stack([w * body_size_factor(w) for w in wins])
    target = np.stack([canonicalize(w) for w in wins])
    z0 = mdm.normalizer.normalize(
        torch.as_tensor(np.stack([joints_to_features(w, mdm.fps) for w in wins]))
    )
    cond = torch.as_tensor(np.stack([data.texts[t] for t in texts]))
    sched, pred = Scheduler(mdm.diffusion), mdm.diffusion.prediction
    noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(123))
    out: dict[str, float] = {}
    for t in ts:
        tb = torch.full((len(z0),), t, dtype=torch.long)
        zt = sched.add_noise(z0, noise, tb)
        z0_hat = sched.convert(mdm.denoiser(zt, tb, cond).float(), zt, tb, pred, "x0")
        for key, z in (("err", z0_hat), ("copy", zt / sched.sqrt_alphas_cumprod[t])):
            joints = features_to_joints(mdm.normalizer.denormalize(z)).numpy()
            err = (
                np.linalg.norm(root_relative(joints) - root_relative(target), axis=-1).mean() * 1000
            )
            out[f"{key}_t{t}"] = float(err)
    return out


def score_reconstruction(mdm: VideoMDM, data: LadderData, cfg: LadderConfig) -> dict[str, float]:
    """MPJPE, N-MPJPE, PA-MPJPE and acceleration error of guided reconstruction of the
    held-out views of each lifter (from the prepared lifted clip noised to
    ``cfg.recon_strength``, in the lifter's camera and world frame)."""
    guidance = GuidanceConfig(
        steps=cfg.sample_steps,
        dps_scale=cfg.dps_scale,
        dps_max_step=cfg.dps_max_step,
        strength=cfg.recon_strength,
    )
    out: dict[str, float] = {}
    for lifter in cfg.recon_lifters:
        views = data.val[lifter]
        preds = [mdm.reconstruct(v.lifted, guidance, cfg.seed).in_world_of(v.lifted) for v in views]
        scores = score_predictions(views, {"model": preds})["model"]
        out |= {f"recon_{lifter}_{k}": v for k, v in scores.items()}
    return out


def score_generation(mdm: VideoMDM, data: LadderData, cfg: LadderConfig) -> dict[str, float]:
    """FID and diversity of prompted samples (held-out texts), diversity among samples of one
    prompt, bone-length variation and joint speed relative to the root."""
    encoder = load_encoder(data.encoder)
    seconds = encoder.cfg.window / mdm.fps

    def sample(texts: list[str], seed: int) -> np.ndarray:
        return mdm.generate(texts, 1, seconds, cfg.sample_steps, cfg.cfg_scale, seed)

    gen = sample(data.prompts, cfg.seed)
    emb = embed(encoder, list(gen))
    names = list(dict.fromkeys(data.prompts))[: cfg.n_prompts]
    within = sample([n for n in names for _ in range(cfg.per_prompt)], cfg.seed + 1)
    groups = within.reshape(len(names), cfg.per_prompt, *within.shape[1:])
    return {
        "fid": frechet_distance(emb, data.real_emb),
        "diversity": diversity(emb),
        "within_prompt": float(np.mean([pairwise_distance(g) for g in groups])),
        "bone_cv": float(np.mean([bone_length_variation(m) for m in gen])),
        "joint_speed": float(np.mean([joint_speed(m) for m in gen])),
    }


def score_rung(state: dict[str, Any], data: LadderData, cfg: LadderConfig) -> dict[str, float]:
    """Every metric of a trained rung (its EMA weights), flat."""
    mdm = VideoMDM.from_checkpoint(state)
    mdm.text_encoder = _FixedText(data.texts)
    t0 = time.perf_counter()
    out = probe_x0(mdm, data, cfg.probe_ts)
    t1 = time.perf_counter()
    out |= score_reconstruction(mdm, data, cfg)
    t2 = time.perf_counter()
    out |= score_generation(mdm, data, cfg)
    t3 = time.perf_counter()
    return out | {"probe_s": t1 - t0, "recon_s": t2 - t1, "gen_s": t3 - t2}


# --- reporting ---------------------------------------------------------------------------

COLUMNS: tuple[tuple[str, str], ...] = (
    ("copy_t2", "copy t2"),
    ("err_t2", "x0 err t2"),
    ("err_t10", "t10"),
    ("err_t25", "t25"),
    ("err_t40", "t40"),
    ("within_prompt", "within"),
    ("diversity", "div"),
    ("fid", "FID"),
    ("bone_cv", "bone CV"),
    ("joint_speed", "speed m/s"),
    ("recon_in_mpjpe_mm", "MPJPE in"),
    ("recon_in_n_mpjpe_mm", "N in"),
    ("recon_in_pa_mpjpe_mm", "PA in"),
    ("recon_in_accel_error", "acc in"),
    ("recon_weak_mpjpe_mm", "MPJPE weak"),
    ("recon_weak_n_mpjpe_mm", "N weak"),
    ("recon_weak_pa_mpjpe_mm", "PA weak"),
    ("recon_weak_accel_error", "acc weak"),
    ("clipped_share", "clipped"),
    ("grad_norm_median", "|g| med"),
)


def table(rungs: Sequence[RungResult]) -> str:
    """A markdown table: one row per (recipe, rung), then the first rung's lifter and real
    (held-out) reference rows."""

    def cells(values: Mapping[str, float]) -> str:
        return " | ".join(
            f"{values[k]:.3g}" if k in values and math.isfinite(values[k]) else ""
            for k, _ in COLUMNS
        )

    rows = ["| recipe | rung | " + " | ".join(c for _, c in COLUMNS) + " |"]
    rows.append("|" + "---|" * (len(COLUMNS) + 2))
    rows += [f"| {r.recipe} | {r.rung} | {cells(r.metrics)} |" for r in rungs]
    if rungs:
        rows.append(f"| lifters | | {cells(rungs[0].lifters)} |")
        rows.append(f"| real (held-out) | | {cells(rungs[0].real)} |")
    return "\n".join(rows)
