"""Training batches for VideoMDM: random fixed-length windows of ``MotionSample`` s
(``motion.sample``: rough 3D x0, the clip's 2D keypoints and its camera).

The denoiser works on canonical features (each window starts at the origin facing +Z, see
``motion.features``), so each window's camera is re-expressed for canonical joints:
with ``W = Ry(theta0) C + s0`` (``theta0`` the window's first heading, ``s0`` its first root
on the floor plane), ``X_cam = R Ry(theta0) C + (R s0 + t)``. ``canonical_camera`` returns
that ``(R', t')``; projecting ``features_to_joints(x0)`` through it reproduces the clip.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from typing import NamedTuple

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from videomdm.models.mdm.config import TrainConfig
from videomdm.models.motion.features import (
    FEATURE_DIM,
    canonicalize,
    heading_angles,
    joints_to_features,
)
from videomdm.models.motion.rays import keypoint_consistent
from videomdm.models.motion.sample import MotionSample, to_body_size
from videomdm.models.motion.skeleton import NUM_JOINTS, root

log = logging.getLogger(__name__)

MIN_FRAMES = 2  # a velocity needs two frames


def training_motion(s: MotionSample, cfg: TrainConfig, lifted: bool) -> MotionSample:
    """The sample's x0 as the model trains on it, and as reconstruction starts from it: a
    ``lifted`` clip made consistent with its keypoints (``x0_keypoints_hz``) and put in the
    body-size gauge (``size_gauge``, camera scaled with it); then smoothed over time
    (``x0_smoothing``). 3D ground truth (not ``lifted``) keeps its geometry and size."""
    if lifted and cfg.x0_keypoints_hz:
        j = keypoint_consistent(s.joints, s.R, s.t, s.u, s.conf, cfg.x0_keypoints_hz, s.fps)
        s = dataclasses.replace(s, joints=j)
    if lifted and cfg.size_gauge:
        s = to_body_size(s)
    if cfg.x0_smoothing > 0:
        j = gaussian_filter1d(s.joints, cfg.x0_smoothing, axis=0, mode="nearest")
        s = dataclasses.replace(s, joints=j)
    return s


def yaw_matrix(angle: float) -> np.ndarray:
    """``Ry(angle)`` as used by ``motion_repr`` (X -> -Z for +90 deg): ``(3, 3)``."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def canonical_camera(
    joints: np.ndarray,
    R: np.ndarray,  # noqa: N803
    t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The camera ``(R', t')`` that sees canonical joints as ``R, t`` sees ``joints``
    ``(T, 17, 3)`` (canonical: frame 0's root above the origin, facing +Z)."""
    theta0 = float(heading_angles(joints[:1])[0])
    r0 = root(joints[0])
    s0 = np.array([r0[0], 0.0, r0[2]])
    return R @ yaw_matrix(theta0), R @ s0 + t


def clean_samples(samples: list[MotionSample]) -> tuple[list[MotionSample], Counter[str]]:
    """Drop samples that cannot train (and count why): too short, non-finite 3D or camera,
    mismatched lengths. Non-finite keypoints stay: the loss masks them point by point."""
    kept, dropped = [], Counter[str]()
    for s in samples:
        n = len(s.joints)
        if n < MIN_FRAMES:
            dropped["too_short"] += 1
        elif s.u.shape != (n, NUM_JOINTS, 2) or s.conf.shape != (n, NUM_JOINTS):
            dropped["bad_shape"] += 1
        elif not np.isfinite(s.joints).all():
            dropped["nan_3d"] += 1
        elif not (np.isfinite(s.R).all() and np.isfinite(s.t).all()):
            dropped["bad_camera"] += 1
        else:
            kept.append(s)
    if dropped:
        log.warning(
            "dropped %d of %d samples: %s", sum(dropped.values()), len(samples), dict(dropped)
        )
    return kept, dropped


class Batch(NamedTuple):
    """A batch of windows; every tensor's first axis is the batch."""

    x0: torch.Tensor  # (B, W, F) raw canonical features
    joints: torch.Tensor  # (B, W, 17, 3) canonical joints (the 3D target)
    R: torch.Tensor  # (B, 3, 3) canonical -> camera  # noqa: N815
    t: torch.Tensor  # (B, 3)
    u: torch.Tensor  # (B, W, 17, 2)
    conf: torch.Tensor  # (B, W, 17)
    mask: torch.Tensor  # (B, W) True on real frames
    cond: torch.Tensor  # (B, C) condition embedding

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(x.to(device, non_blocking=True) for x in self))

    def slice(self, sel: slice) -> Batch:
        return Batch(*(x[sel] for x in self))


def sample_windows(
    lengths: np.ndarray, batch_size: int, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices (uniform over clips) and window starts (uniform within each clip)."""
    idx = rng.integers(0, len(lengths), size=batch_size)
    span = np.maximum(lengths[idx] - window, 0)
    starts = (rng.random(batch_size) * (span + 1)).astype(np.int64)
    return idx, starts


def make_batch(
    samples: list[MotionSample],
    cond: np.ndarray,
    idx: np.ndarray,
    starts: np.ndarray,
    window: int,
) -> Batch:
    """Windows ``samples[idx[i]][starts[i] : starts[i] + window]`` padded to ``window``;
    ``cond`` ``(N, C)`` holds one condition row per sample."""
    b = len(idx)
    x0 = np.zeros((b, window, FEATURE_DIM), np.float32)
    joints = np.zeros((b, window, NUM_JOINTS, 3), np.float32)
    u = np.zeros((b, window, NUM_JOINTS, 2), np.float32)
    conf = np.zeros((b, window, NUM_JOINTS), np.float32)
    mask = np.zeros((b, window), bool)
    rs, ts = np.zeros((b, 3, 3), np.float32), np.zeros((b, 3), np.float32)
    for k, (i, s0) in enumerate(zip(idx, starts, strict=True)):
        smp = samples[int(i)]
        sl = slice(int(s0), int(s0) + window)
        j = smp.joints[sl].astype(np.float64)
        n = len(j)
        feats = joints_to_features(j, smp.fps)  # (n, F)
        R, t = canonical_camera(j, smp.R, smp.t)  # noqa: N806
        x0[k, :n] = feats
        joints[k, :n] = canonicalize(j)
        u[k, :n], conf[k, :n], mask[k, :n] = smp.u[sl], smp.conf[sl], True
        rs[k], ts[k] = R, t
    return Batch(
        torch.from_numpy(x0),
        torch.from_numpy(joints),
        torch.from_numpy(rs),
        torch.from_numpy(ts),
        torch.from_numpy(u),
        torch.from_numpy(conf),
        torch.from_numpy(mask),
        torch.as_tensor(cond[idx]),  # float text embeddings or integer labels
    )
