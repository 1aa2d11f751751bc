"""3D pose metrics (mm), a no-learning lifting baseline, and the lifter's evaluation protocol.

All metrics take motions ``(..., T, 17, 3)`` in metres and return millimetres:
- ``mpjpe``: mean per-joint position error after aligning the roots (hip midpoints), the
  Human3.6M protocol 1; it keeps the depth ambiguity of the pose;
- ``pa_mpjpe``: after a per-frame similarity (Procrustes with scale) alignment, protocol 2;
- ``n_mpjpe``: after root alignment and a per-frame scale only (Rhodin et al. 2018): what is
  left of MPJPE once the monocular scale ambiguity (a bigger person farther away) is removed,
  while the pose's orientation errors still count;
- ``accel_error``: mean norm of the difference of second differences, mm/frame^2, on
  root-aligned joints (as HMMR / VIBE report it).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from videomdm.models.lifter.network import Lifter, lift_many
from videomdm.models.lifter.train import clip_camera
from videomdm.models.motion.cameras import NoiseConfig, add_2d_noise, project
from videomdm.models.motion.skeleton import MEAN_BONE_LENGTHS, RIGID_BONES, root

log = logging.getLogger(__name__)


def _root_aligned(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - root(x)[..., None, :]


def mpjpe(pred: np.ndarray, gt: np.ndarray, root_align: bool = True) -> float:
    """Mean per-joint position error (mm); ``root_align=False`` keeps absolute positions."""
    if root_align:
        pred, gt = _root_aligned(pred), _root_aligned(gt)
    return 1000.0 * float(np.linalg.norm(np.asarray(pred) - np.asarray(gt), axis=-1).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Each pose of ``pred`` ``(..., J, 3)`` moved by the similarity transform (rotation,
    scale, translation) that best fits it to ``gt`` in least squares, all poses at once."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mu_p, mu_g = pred.mean(-2, keepdims=True), gt.mean(-2, keepdims=True)
    x, y = pred - mu_p, gt - mu_g  # (..., J, 3)
    u, s, vt = np.linalg.svd(np.swapaxes(x, -1, -2) @ y)  # H = X^T Y, (..., 3, 3)
    v = np.swapaxes(vt, -1, -2)
    d = np.sign(np.linalg.det(v @ np.swapaxes(u, -1, -2)))  # -1 where the fit would mirror
    s[..., -1] *= d
    v[..., -1] *= d[..., None]
    rot = v @ np.swapaxes(u, -1, -2)  # R with R x_i ~ y_i
    scale = s.sum(-1) / np.maximum((x**2).sum((-1, -2)), 1e-12)  # (...,)
    return scale[..., None, None] * x @ np.swapaxes(rot, -1, -2) + mu_g


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE (mm) after per-frame Procrustes alignment with scale."""
    return mpjpe(procrustes_align(pred, gt), gt, root_align=False)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE (mm) after root alignment and the per-frame scale that best fits ``pred`` to
    ``gt`` in least squares."""
    pred = _root_aligned(np.asarray(pred, np.float64))
    gt = _root_aligned(np.asarray(gt, np.float64))
    scale = (pred * gt).sum((-1, -2)) / np.maximum((pred**2).sum((-1, -2)), 1e-12)
    return mpjpe(scale[..., None, None] * pred, gt, root_align=False)


def accel_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Acceleration error (mm/frame^2) of root-aligned motions ``(..., T, 17, 3)``, T >= 3."""
    a_p = np.diff(_root_aligned(pred), n=2, axis=-3)
    a_g = np.diff(_root_aligned(gt), n=2, axis=-3)
    return 1000.0 * float(np.linalg.norm(a_p - a_g, axis=-1).mean())


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


def random_view(joints: np.ndarray, rng: np.random.Generator, noise_cfg: NoiseConfig):
    """One random camera's view of a motion ``(T, 17, 3)``: the camera (R, t), camera-frame
    joints, clean u, detector-like noisy u and its confidences."""
    R, t = clip_camera(joints, rng)  # noqa: N806
    cam = joints @ R.T + t  # (T, 17, 3)
    u, _ = project(cam)
    noisy, conf = add_2d_noise(u, rng, noise_cfg)
    return R, t, cam, u, noisy, conf


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
    out |= _scores([fixed_depth_backproject(u, c) for u, c in zip(noisy, confs, strict=True)],
                   gts, "baseline_noisy_")  # fmt: skip
    out |= {"n_clips": float(len(clips)), "n_frames": float(sum(len(g) for g in gts))}
    log.info("lifter eval: %s", {k: round(v, 1) for k, v in out.items()})
    return out
