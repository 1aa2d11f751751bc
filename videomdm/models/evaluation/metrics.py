"""3D pose metrics (mm).

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

import numpy as np

from videomdm.models.motion.skeleton import root

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
