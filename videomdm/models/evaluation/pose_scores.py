"""Pose scores against a truth with holes (a triangulated joint can be missing).

``motion_scores`` compares a predicted motion with the truth, both ``(T, 17, 3)`` metres in
one camera frame, the truth NaN where it is unknown; every score uses only the joints the
truth has:
- ``mpjpe_seq_mm``: mean joint error after ONE similarity (rotation, scale, translation) fitted
  over the whole sequence: what is left of a motion once its global placement and size are
  forgiven (trajectory, orientation over time and pose all count); ``scale`` is that
  similarity's factor (above 1: the prediction is too small);
- ``pa_mpjpe_mm``: after a similarity per frame (Procrustes, protocol 2);
- ``n_mpjpe_mm``: after aligning the roots and a scale per frame (Rhodin et al. 2018);
- ``mpjpe_mm``: after aligning the roots only (protocol 1, camera frame);
- ``accel_error``: mean norm of the difference of second differences of root-aligned joints,
  mm/frame^2 at the motion's frame rate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from videomdm.models.motion.skeleton import JOINT_INDEX

_HIPS = [JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]]


@dataclass(frozen=True)
class MotionScores:
    mpjpe_seq_mm: float
    pa_mpjpe_mm: float
    n_mpjpe_mm: float
    mpjpe_mm: float
    accel_error: float
    scale: float  # the sequence similarity's scale
    frames: int  # frames with at least 4 known joints
    joints: int  # known joints scored

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in dataclasses.asdict(self).items()}


def similarity(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The weighted least-squares similarity ``s R x + t ~ y`` of points ``x``, ``y``
    ``(N, 3)`` with weights ``w`` ``(N,)`` (Umeyama 1991): ``(s, R, t)``."""
    w = w / max(w.sum(), 1e-12)
    mx, my = w @ x, w @ y
    xc, yc = x - mx, y - my
    cov = (w[:, None] * yc).T @ xc  # (3, 3)
    u, d, vt = np.linalg.svd(cov)
    e = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])  # no reflection
    rot = u @ e @ vt
    var = (w * (xc**2).sum(-1)).sum()
    s = float(np.trace(np.diag(d) @ e) / max(var, 1e-12))
    return s, rot, my - s * rot @ mx


def _error(pred: np.ndarray, gt: np.ndarray, ok: np.ndarray) -> float:
    return 1000.0 * float(np.linalg.norm(pred - gt, axis=-1)[ok].mean()) if ok.any() else np.nan


def _root_aligned(x: np.ndarray) -> np.ndarray:
    return x - x[:, _HIPS].mean(1, keepdims=True)


def motion_scores(pred: np.ndarray, truth: np.ndarray) -> MotionScores:
    """Scores (see the module) of ``pred`` against ``truth``, ``(T, 17, 3)`` metres, one
    camera frame; truth joints that are NaN are left out."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(truth, dtype=np.float64)
    ok = np.isfinite(gt).all(-1) & np.isfinite(pred).all(-1)  # (T, 17)
    ok &= (ok.sum(1) >= 4)[:, None]  # a pose needs a few joints
    gt0, pr0 = np.where(ok[..., None], gt, 0.0), np.where(ok[..., None], pred, 0.0)
    s, rot, t = similarity(pr0.reshape(-1, 3), gt0.reshape(-1, 3), ok.reshape(-1).astype(float))
    seq = s * pred @ rot.T + t
    per_frame = np.empty_like(pred)
    for f in np.flatnonzero(ok.any(1)):
        sf, rf, tf = similarity(pr0[f], gt0[f], ok[f].astype(float))
        per_frame[f] = sf * pred[f] @ rf.T + tf
    rooted = ok & ok[:, _HIPS].all(1, keepdims=True)
    pr_r, gt_r = _root_aligned(np.where(rooted[..., None], pred, 0.0)), _root_aligned(gt0)
    num = (np.where(rooted[..., None], pr_r * gt_r, 0.0)).sum((1, 2))
    den = (np.where(rooted[..., None], pr_r**2, 0.0)).sum((1, 2))
    n_scaled = (num / np.maximum(den, 1e-12))[:, None, None] * pr_r
    acc_ok = rooted[2:] & rooted[1:-1] & rooted[:-2]
    acc = np.diff(pr_r, 2, axis=0) - np.diff(gt_r, 2, axis=0)
    return MotionScores(
        mpjpe_seq_mm=_error(seq, gt, ok),
        pa_mpjpe_mm=_error(per_frame, gt, ok),
        n_mpjpe_mm=_error(n_scaled, gt_r, rooted),
        mpjpe_mm=_error(pr_r, gt_r, rooted),
        accel_error=_error(acc, np.zeros_like(acc), acc_ok),
        scale=s,
        frames=int(ok.any(1).sum()),
        joints=int(ok.sum()),
    )


def mean_scores(scores: list[MotionScores]) -> MotionScores:
    """Joint-weighted mean of several motions' scores (frames and joints summed)."""
    w = np.array([s.joints for s in scores], dtype=np.float64)
    fields = [
        f.name for f in dataclasses.fields(MotionScores) if f.name not in ("frames", "joints")
    ]
    means = {
        f: float(np.average([getattr(s, f) for s in scores], weights=w)) if w.sum() else np.nan
        for f in fields
    }
    return MotionScores(
        **means, frames=sum(s.frames for s in scores), joints=sum(s.joints for s in scores)
    )
