"""The lifter's evaluation protocol: mocap through random cameras, lifted from clean and from
detector-noisy 2D, scored in the camera frame; beside a no-learning baseline that puts each
keypoint on its ray at a depth guessed from bone lengths (``fixed_depth_backproject``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from videomdm.models.evaluation.metrics import accel_error, mpjpe, pa_mpjpe
from videomdm.models.lifter.network import Lifter, lift_many
from videomdm.models.motion.cameras import NoiseConfig, random_view
from videomdm.models.motion.skeleton import MEAN_BONE_LENGTHS, RIGID_BONES

log = logging.getLogger(__name__)


def fixed_depth_backproject(
    u: np.ndarray,
    conf: np.ndarray | None = None,
    depth: float | np.ndarray | None = None,
    bone_lengths: np.ndarray = MEAN_BONE_LENGTHS,
    depth_profile: np.ndarray | None = None,
) -> np.ndarray:
    """No-learning lifting: joint j of frame t is put on its camera ray at depth
    ``depth[t] + depth_profile[j]``. ``u`` ``(T, 17, 2)``; returns ``(T, 17, 3)``.

    ``depth`` defaults to the clip's median of per-frame estimates: the lower quartile over
    rigid bones of mean 3D length / 2D length (a bone parallel to the image gives the true
    depth, a foreshortened one more). ``depth_profile`` (m, per joint) defaults to flat: under
    the protocol's uniform azimuths the mean pose's expected depth profile is flat; pass a
    frontal mean pose's profile for videos of people facing the camera.
    """
    u = np.asarray(u, dtype=np.float64)
    conf = np.ones(u.shape[:2]) if conf is None else np.asarray(conf, dtype=np.float64)
    valid = np.isfinite(u).all(-1) & np.isfinite(conf) & (conf > 0.1)  # (T, 17)
    u = np.where(valid[..., None], u, np.nan)
    for j in range(u.shape[1]):  # a missing joint falls back to the frame's centroid
        u[:, j] = np.where(np.isnan(u[:, j]), np.nanmean(u, axis=1), u[:, j])
    u = np.nan_to_num(u)
    if depth is None:
        child, parent = [c for c, _ in RIGID_BONES], [p for _, p in RIGID_BONES]
        l2d = np.linalg.norm(u[:, child] - u[:, parent], axis=-1)  # (T, B)
        ok = valid[:, child] & valid[:, parent] & (l2d > 1e-6)
        ratio = np.where(ok, bone_lengths / np.maximum(l2d, 1e-6), np.nan)
        per_frame = np.nanpercentile(np.where(ok.any(1)[:, None], ratio, 5.0), 25, axis=1)
        depth = float(np.median(per_frame))
    z = np.broadcast_to(np.asarray(depth, dtype=np.float64).reshape(-1, 1), u.shape[:2])
    if depth_profile is not None:
        z = z + np.asarray(depth_profile)[None, :]
    return np.concatenate([u * z[..., None], z[..., None]], axis=-1)


def _scores(preds: list[np.ndarray], gts: list[np.ndarray], prefix: str) -> dict[str, float]:
    """Frame-weighted means over clips."""
    pred, gt = np.concatenate(preds), np.concatenate(gts)
    acc = [accel_error(p, g) for p, g in zip(preds, gts, strict=True) if len(p) >= 3]
    w = [len(p) - 2 for p in preds if len(p) >= 3]
    return {
        f"{prefix}mpjpe_mm": mpjpe(pred, gt),
        f"{prefix}pa_mpjpe_mm": pa_mpjpe(pred, gt),
        f"{prefix}accel_error": float(np.average(acc, weights=w)) if acc else float("nan"),
        f"{prefix}abs_mpjpe_mm": mpjpe(pred, gt, root_align=False),
    }


def evaluate_lifter(
    model: Lifter,
    clips: list[Any],
    rng: np.random.Generator,
    noise_cfg: NoiseConfig | None = None,
    cameras_per_clip: int = 1,
) -> dict[str, float]:
    """The synthetic protocol: each clip (``MocapClip`` or ``(T, 17, 3)`` array) seen by
    random cameras, lifted from clean 2D (confidence 1) and from noisy 2D (``noise_cfg``,
    default ``NoiseConfig()``). Keys
    ``mpjpe_mm``, ``pa_mpjpe_mm``, ``accel_error``, ``abs_mpjpe_mm`` (no root alignment:
    includes the root depth error), the same with ``noisy_``, and ``baseline_`` /
    ``baseline_noisy_`` for ``fixed_depth_backproject``; plus ``n_clips`` and ``n_frames``."""
    noise_cfg = noise_cfg or NoiseConfig()
    gts, clean, noisy, confs = [], [], [], []
    for clip in clips:
        joints = np.asarray(getattr(clip, "joints", clip), dtype=np.float64)
        for _ in range(cameras_per_clip):
            _, _, cam, u, u_noisy, conf = random_view(joints, rng, noise_cfg)
            gts.append(cam)
            clean.append(u)
            noisy.append(u_noisy)
            confs.append(conf)
    ones = [np.ones(u.shape[:2]) for u in clean]
    out = _scores(lift_many(model, clean, ones), gts, "")
    out |= _scores(lift_many(model, noisy, confs), gts, "noisy_")
    out |= _scores([fixed_depth_backproject(u) for u in clean], gts, "baseline_")
    out |= _scores(
        [fixed_depth_backproject(u, c) for u, c in zip(noisy, confs, strict=True)],
        gts,
        "baseline_noisy_",
    )
    out |= {"n_clips": float(len(clips)), "n_frames": float(sum(len(g) for g in gts))}
    log.info("lifter eval: %s", {k: round(v, 1) for k, v in out.items()})
    return out
