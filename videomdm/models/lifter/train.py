"""Training the lifter: mocap seen through random cameras with detector noise, a train /
validation split by clip, and the training loop (AdamW, one-cycle LR, flip augmentation).

Split from ``lifter.py`` (the network, features, inference, checkpoints, world frame).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from videomdm.errors import UserError
from videomdm.models.lifter.network import (
    VAL_EVERY,
    Lifter,
    LifterConfig,
    _flip,
    input_conf,
    lift_many,
    make_features,
)
from videomdm.models.motion.cameras import NoiseConfig, add_2d_noise, clip_camera, project
from videomdm.models.motion.skeleton import NUM_JOINTS, root

log = logging.getLogger(__name__)

# --- synthetic training data --------------------------------------------------------------


@dataclass(frozen=True)
class TrainingPair:
    u: np.ndarray  # (T, 17, 2) normalised 2D input
    conf: np.ndarray  # (T, 17)
    joints_cam: np.ndarray  # (T, 17, 3) ground truth, camera frame
    clip: int  # index of the source clip
    noisy: bool


def make_training_pairs(
    clips: list[Any],
    rng: np.random.Generator,
    cameras_per_clip: int = 4,
    noise_cfg: NoiseConfig | None = None,
    noisy_fraction: float = 0.5,
    roll_deg: float = 0.0,
) -> list[TrainingPair]:
    """Each clip's joints ``(T, 17, 3)`` (``MocapClip`` or array) seen by ``cameras_per_clip``
    random cameras (rolled by up to ``roll_deg``); each view gets detector noise (default
    ``NoiseConfig()``) with probability ``noisy_fraction``."""
    noise_cfg = noise_cfg or NoiseConfig()
    pairs = []
    for i, clip in enumerate(clips):
        joints = np.asarray(getattr(clip, "joints", clip), dtype=np.float64)
        for _ in range(cameras_per_clip):
            R, t = clip_camera(joints, rng, roll_deg)  # noqa: N806
            cam = joints @ R.T + t  # (T, 17, 3)
            u, _ = project(cam)
            noisy = bool(rng.random() < noisy_fraction)
            conf = np.ones(u.shape[:2])
            if noisy:
                u, conf = add_2d_noise(u, rng, noise_cfg)
            pairs.append(
                TrainingPair(
                    u.astype(np.float32), conf.astype(np.float32), cam.astype(np.float32), i, noisy
                )
            )
    return pairs


def split_by_clip(
    clips: list[Any], val_fraction: float = 0.15, seed: int = 0
) -> tuple[list[Any], list[Any]]:
    """Train/validation split by whole clip, stratified by ``source`` so that validation holds
    clips of every source (a source with a single clip goes to validation: it then tests a
    motion style the lifter never saw)."""
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        by_source.setdefault(getattr(clip, "source", ""), []).append(i)
    val: set[int] = set()
    for idx in by_source.values():
        n_val = max(1, round(val_fraction * len(idx)))
        val.update(rng.permutation(idx)[:n_val].tolist())
    return (
        [c for i, c in enumerate(clips) if i not in val],
        [c for i, c in enumerate(clips) if i in val],
    )


def split_by_source(clips: list[Any], target: str) -> tuple[list[Any], list[Any]]:
    """(clips of every other source, clips of ``target``); a clear error when either is empty."""
    sources = sorted({c.source for c in clips})
    if target not in sources:
        raise UserError(f"no mocap clip has source {target!r}; the sources are {sources}")
    if sources == [target]:
        raise UserError(
            f"every mocap clip has source {target!r}: no other source to train the lifter on"
        )
    return [c for c in clips if c.source != target], [c for c in clips if c.source == target]


# --- training -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stacked:
    """All pairs concatenated in time, with the targets the network predicts."""

    feat: torch.Tensor  # (N, N_FEAT)
    c: torch.Tensor  # (N, 2)
    log_s: torch.Tensor  # (N,)
    joints: torch.Tensor  # (N, 17, 3) camera frame
    starts: np.ndarray  # (P,) first row of each pair
    lengths: np.ndarray  # (P,)
    weights: np.ndarray  # (P,) probability of drawing a window from each pair


def _stack(
    pairs: list[TrainingPair], sources: list[str], balance: float, cfg: LifterConfig
) -> _Stacked:
    parts = [make_features(p.u, input_conf(cfg, p.conf)) for p in pairs]
    lengths = np.array([len(p.u) for p in pairs])
    pair_src = [sources[p.clip] for p in pairs]
    src_frames = {s: lengths[[q == s for q in pair_src]].sum() for s in set(pair_src)}
    weights = lengths / np.array([src_frames[s] for s in pair_src], dtype=np.float64) ** balance
    return _Stacked(
        torch.from_numpy(np.concatenate([f for f, _, _ in parts])),
        torch.from_numpy(np.concatenate([c for _, c, _ in parts]).astype(np.float32)),
        torch.from_numpy(np.concatenate([s for _, _, s in parts]).astype(np.float32)),
        torch.from_numpy(np.concatenate([p.joints_cam for p in pairs])),
        np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        lengths,
        weights / weights.sum(),
    )


def _batch(data: _Stacked, rng: np.random.Generator, size: int, window: int):
    """``size`` windows of ``window`` frames, pairs drawn by ``data.weights``.
    Pairs shorter than the window repeat their last frame; ``mask`` ``(B, W)`` marks real
    frames."""
    p = rng.choice(len(data.lengths), size=size, p=data.weights)
    off = (rng.random(size) * np.maximum(data.lengths[p] - window + 1, 1)).astype(int)
    rel = off[:, None] + np.arange(window)  # (B, W)
    mask = torch.from_numpy(rel < data.lengths[p, None])
    rows = torch.from_numpy(data.starts[p, None] + np.minimum(rel, data.lengths[p, None] - 1))
    return data.feat[rows], data.c[rows], data.log_s[rows], data.joints[rows], mask


def lifter_loss(model: Lifter, cfg: LifterConfig, feat, c, log_s, joints, mask) -> torch.Tensor:
    """Pose MPJPE (root-relative, m) + velocity L2 + root L1 on (du, dv, r), real frames only."""
    out = model(feat)  # (B, W, N_OUT)
    pose = out[..., : NUM_JOINTS * 3].unflatten(-1, (NUM_JOINTS, 3))
    rt = root(joints)  # (B, W, 3)
    gt_rel = joints - rt[..., None, :]
    z = rt[..., 2].clamp(min=0.1)
    gt_root = torch.cat(
        [
            ((rt[..., :2] / z[..., None]) - c) / torch.exp(log_s)[..., None],
            (torch.log(z) + log_s)[..., None],
        ],
        dim=-1,
    )
    m = mask.float()
    pose_err = (torch.linalg.norm(pose - gt_rel, dim=-1).mean(-1) * m).sum() / m.sum()
    root_err = ((out[..., -3:] - gt_root).abs().sum(-1) * m).sum() / m.sum()
    mv = m[:, 1:] * m[:, :-1]
    vel = (pose[:, 1:] - pose[:, :-1]) - (gt_rel[:, 1:] - gt_rel[:, :-1])
    vel_err = ((vel**2).sum(-1).mean(-1) * mv).sum() / mv.sum().clamp(min=1.0)
    return pose_err + cfg.root_weight * root_err + cfg.velocity_weight * vel_err


def train_lifter(
    train_clips: list[Any],
    val_clips: list[Any],
    cfg: LifterConfig | None = None,
    steps: int | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    num_threads: int | None = None,
) -> tuple[Lifter, dict[str, list[float]]]:
    """Train on ``train_clips`` (mocap) through random cameras; AdamW, one-cycle LR.
    ``history`` holds every ``VAL_EVERY`` steps ``step``, ``loss``, ``val_mpjpe_mm``
    (root-relative, one noisy or clean view per clip of ``val_clips``) and ``time_s`` (training
    seconds so far, not counting data preparation or validation). ``progress(1)`` is called
    after each step. ``num_threads`` sets
    torch's CPU threads for the call: 1 on cores shared with other work, where OpenMP's
    barriers on this small network's many short ops made 2 threads 35x slower than 1."""
    cfg = cfg or LifterConfig()
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads or previous)
    try:
        return _train(
            train_clips, val_clips, cfg, cfg.steps if steps is None else steps, seed, progress
        )
    finally:
        torch.set_num_threads(previous)


def _train(
    train_clips: list[Any],
    val_clips: list[Any],
    cfg: LifterConfig,
    steps: int,
    seed: int,
    progress: Callable[[int], None] | None,
) -> tuple[Lifter, dict[str, list[float]]]:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    pairs = make_training_pairs(
        train_clips, rng, cfg.cameras_per_clip, cfg.noise, cfg.noisy_fraction, cfg.roll_deg
    )
    sources = [getattr(c, "source", "") for c in train_clips]
    data = _stack(pairs, sources, cfg.source_balance, cfg)
    val = make_training_pairs(
        val_clips, np.random.default_rng(seed + 1), 1, cfg.noise, 0.5, cfg.roll_deg
    )
    model = Lifter(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # OneCycleLR divides by the length of its warm-up phase (pct_start * total - 1 steps): at
    # least 10 scheduled steps and 2 of warm-up, so a few-step run does not divide by zero
    total = max(steps, 10)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, cfg.lr, total_steps=total, pct_start=max(0.1, 2 / total)
    )
    history: dict[str, list[float]] = {"step": [], "loss": [], "val_mpjpe_mm": [], "time_s": []}
    train_time, running = 0.0, []
    model.train()
    for step in range(1, steps + 1):
        tic = time.perf_counter()
        feat, c, log_s, joints, mask = _batch(data, rng, cfg.batch_size, cfg.window)
        if rng.random() < 0.5:
            feat, c, joints = _flip(feat, c, joints)
        loss = lifter_loss(model, cfg, feat, c, log_s, joints, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running.append(loss.item())
        train_time += time.perf_counter() - tic
        if step % VAL_EVERY == 0 or step == steps:
            history["step"].append(step)
            history["loss"].append(float(np.mean(running)))
            history["val_mpjpe_mm"].append(_val_mpjpe_mm(model, val))
            history["time_s"].append(train_time)
            log.info(
                "step %d loss %.4f val mpjpe %.1f mm",
                step,
                history["loss"][-1],
                history["val_mpjpe_mm"][-1],
            )
            running = []
        if progress:
            progress(1)
    model.eval()
    return model, history


def _val_mpjpe_mm(model: Lifter, pairs: list[TrainingPair]) -> float:
    if not pairs:
        return float("nan")
    preds = lift_many(model, [p.u for p in pairs], [p.conf for p in pairs])
    errs = [
        np.linalg.norm(
            (pr - root(pr)[:, None]) - (p.joints_cam - root(p.joints_cam)[:, None]), axis=-1
        ).mean()
        for pr, p in zip(preds, pairs, strict=True)
    ]
    return 1000.0 * float(np.mean(errs))
