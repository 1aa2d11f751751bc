"""Multi-view geometry for calibrated cameras: confidence-weighted DLT triangulation with
outlier views dropped, reprojection errors, epipolar distances, and keypoints resampled at
fractional frame times (for views that are not frame-aligned).

Keypoints are pixels with a score, ``(..., 17, 3)``; cameras are ``calibration.CameraModel``
with extrinsics. Triangulation works on undistorted normalised coordinates, so the
projection matrix of a camera is its ``[R | t]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from videomdm.models.motion.calibration import CameraModel
from videomdm.models.motion.skeleton import FLIP_PERM, NUM_JOINTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriangulationConfig:
    min_score: float = 0.3  # a keypoint below this score is not used
    # a view reprojecting worse than this is dropped (if 3+ remain). On the multi-view
    # recording 40 px kept bones steadiest (std of the moving person's 33 / 28 / 38 mm at 25 /
    # 40 / 15 px): a small model's keypoints are noisy, and averaging views beats dropping them
    max_error_px: float = 40.0
    min_views: int = 2  # fewer usable views: the point is NaN


def _dlt(P: np.ndarray, u: np.ndarray, w: np.ndarray) -> np.ndarray:  # noqa: N803
    """Weighted DLT of N points seen by V cameras: ``P`` ``(V, 3, 4)``, ``u`` ``(V, N, 2)``
    undistorted normalised, ``w`` ``(V, N)`` (0: unused). Returns ``(N, 3)``."""
    u = np.nan_to_num(u)
    rows_x = u[..., 0:1] * P[:, None, 2] - P[:, None, 0]  # (V, N, 4)
    rows_y = u[..., 1:2] * P[:, None, 2] - P[:, None, 1]
    A = np.concatenate([rows_x, rows_y], axis=0) * np.concatenate([w, w])[..., None]  # noqa: N806
    ata = np.einsum("kni,knj->nij", A, A)  # (N, 4, 4)
    _, vecs = np.linalg.eigh(ata)  # ascending eigenvalues: the first vector is the solution
    h = vecs[..., 0]  # (N, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        return h[:, :3] / h[:, 3:4]


def _refine(
    P: np.ndarray,  # noqa: N803
    u: np.ndarray,
    w: np.ndarray,
    f: np.ndarray,
    X: np.ndarray,  # noqa: N803
    iters: int = 5,
) -> np.ndarray:
    """Gauss-Newton on the weighted squared reprojection error in pixels (``f`` ``(V,)`` the
    focal lengths), from the DLT's ``X`` ``(N, 3)``. The DLT minimises an algebraic error
    that weighs each view by the point's depth in it, so a near camera's pixels count less
    than a far one's; this step makes every view's pixels count alike."""
    u = np.nan_to_num(u)
    R, t = P[:, :, :3], P[:, :, 3]  # noqa: N806
    ok = np.isfinite(X).all(-1)
    X = np.where(ok[:, None], X, 0.0)  # noqa: N806
    for _ in range(iters):
        cam = np.einsum("vij,nj->vni", R, X) + t[:, None]  # (V, N, 3)
        z = np.maximum(cam[..., 2:3], 1e-6)
        proj = cam[..., :2] / z
        r = f[:, None, None] * (proj - u)  # (V, N, 2) px
        # d proj / d X = (R[:2] - proj R[2]) / z, in pixels
        J = (
            f[:, None, None, None]
            * (  # noqa: N806
                R[:, None, :2, :] - proj[..., None] * R[:, None, 2:3, :]
            )
            / z[..., None]
        )  # (V, N, 2, 3)
        ww = w * (cam[..., 2] > 1e-6)
        H = np.einsum("vn,vnki,vnkj->nij", ww, J, J)  # noqa: N806
        damp = 1e-6 * (1.0 + np.trace(H, axis1=1, axis2=2))  # points seen once stay finite
        H = H + damp[:, None, None] * np.eye(3)  # noqa: N806
        g = np.einsum("vn,vnki,vnk->ni", ww, J, r)
        X = X - np.linalg.solve(H, g[..., None])[..., 0]  # noqa: N806
    return np.where(ok[:, None], X, np.nan)


def reprojection_errors(
    cameras: Sequence[CameraModel],
    X: np.ndarray,
    px: np.ndarray,  # noqa: N803
) -> np.ndarray:
    """Pixel distance between each camera's projection of ``X`` ``(N, 3)`` and ``px``
    ``(V, N, 2)``: ``(V, N)`` (NaN where either is missing or the point is behind it)."""
    out = np.full(px.shape[:2], np.nan)
    for v, cam in enumerate(cameras):
        proj, z = cam.project(X)
        err = np.linalg.norm(proj - px[v], axis=-1)
        out[v] = np.where(z > 0, err, np.nan)
    return out


def triangulate(
    cameras: Sequence[CameraModel],
    kp: np.ndarray,
    cfg: TriangulationConfig = TriangulationConfig(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate keypoints ``kp`` ``(V, ..., 3)`` (pixels and score per view) seen by
    ``cameras``. Each point is a DLT weighted by the scores of the views that see it, refined
    by Gauss-Newton on the score-weighted pixel reprojection error (``_refine``); while
    its worst view reprojects beyond ``cfg.max_error_px`` and more than ``cfg.min_views``
    views remain, that view is dropped.

    Returns points ``(..., 3)`` (NaN where fewer than ``min_views`` usable views), the
    reprojection error of each view ``(V, ...)`` px (NaN for views not used) and the number
    of views used ``(...)``."""
    kp = np.asarray(kp, dtype=np.float64)
    n_views, shape = kp.shape[0], kp.shape[1:-1]
    px = kp[..., :2].reshape(n_views, -1, 2)
    score = np.nan_to_num(kp[..., 2].reshape(n_views, -1))
    w = np.where((score >= cfg.min_score) & np.isfinite(px).all(-1), score, 0.0)
    u = np.stack([cam.undistort(px[v]) for v, cam in enumerate(cameras)])
    P = np.stack([np.hstack([c.pose()[0], c.pose()[1][:, None]]) for c in cameras])  # noqa: N806
    focal = np.array([0.5 * (c.intrinsics.fx + c.intrinsics.fy) for c in cameras])
    while True:
        X = _refine(P, u, w, focal, _dlt(P, u, w))  # noqa: N806
        err = np.where(w > 0, reprojection_errors(cameras, X, px), np.nan)
        n_used = (w > 0).sum(0)
        worst = np.nanargmax(np.where(np.isfinite(err), err, -1.0), axis=0)  # (N,)
        worst_err = err[worst, np.arange(len(worst))]
        drop = (n_used > max(cfg.min_views, 2)) & (worst_err > cfg.max_error_px)
        if not drop.any():
            break
        w[worst[drop], np.flatnonzero(drop)] = 0.0
    bad = n_used < cfg.min_views
    X[bad] = np.nan
    err[:, bad] = np.nan
    return X.reshape(*shape, 3), err.reshape(n_views, *shape), n_used.reshape(shape)


def epipolar_distance(
    cam_a: CameraModel, cam_b: CameraModel, px_a: np.ndarray, px_b: np.ndarray
) -> np.ndarray:
    """Symmetric epipolar distance (px, the mean of the two point-to-line distances) between
    corresponding pixels ``px_a``, ``px_b`` ``(..., 2)`` of two calibrated cameras."""
    (Ra, ta), (Rb, tb) = cam_a.pose(), cam_b.pose()  # noqa: N806
    R = Rb @ Ra.T  # noqa: N806 - a's camera frame to b's
    t = tb - R @ ta
    E = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]]) @ R  # noqa: N806
    ua, ub = cam_a.undistort(px_a), cam_b.undistort(px_b)
    ha = np.concatenate([ua, np.ones_like(ua[..., :1])], -1)
    hb = np.concatenate([ub, np.ones_like(ub[..., :1])], -1)
    line_b = ha @ E.T  # lines in b's normalised image
    line_a = hb @ E
    num = np.abs((hb * line_b).sum(-1))
    d_b = num / np.linalg.norm(line_b[..., :2], axis=-1) * cam_b.intrinsics.fx
    d_a = num / np.linalg.norm(line_a[..., :2], axis=-1) * cam_a.intrinsics.fx
    return 0.5 * (d_a + d_b)


def sample_at(kp: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Keypoints ``(F, ...)`` at fractional frame ``times`` ``(N,)`` by linear interpolation
    between the two neighbouring frames: ``(N, ...)``, NaN outside ``[0, F - 1]`` or where
    a neighbour is NaN."""
    kp = np.asarray(kp, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    inside = (times >= 0) & (times <= len(kp) - 1)
    t = np.clip(times, 0, len(kp) - 1)
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, len(kp) - 1)
    a = (t - i0).reshape(-1, *([1] * (kp.ndim - 1)))
    out = (1.0 - a) * kp[i0] + a * kp[i1]
    exact = a == 0  # a frame time: the frame itself, even when its neighbour is missing
    out = np.where(exact, kp[i0], out)
    out[~inside] = np.nan
    return out


# Left/right confusions a 2D detector makes (a body seen from behind, crossed limbs): the
# whole body mirrored, or only the arms (elbow, wrist) or only the legs (knee, ankle).
SWAPS: dict[str, tuple[int, ...]] = {
    "body": FLIP_PERM,
    "arms": tuple(FLIP_PERM[j] if j in (7, 8, 9, 10) else j for j in range(NUM_JOINTS)),
    "legs": tuple(FLIP_PERM[j] if j in (13, 14, 15, 16) else j for j in range(NUM_JOINTS)),
}


def _frame_cost(cameras: Sequence[CameraModel], kp: np.ndarray, cfg: TriangulationConfig):
    """Median reprojection error per frame ``(F,)`` of ``kp`` ``(V, F, 17, 3)``, all views."""
    keep = TriangulationConfig(cfg.min_score, float("inf"), cfg.min_views)
    _, err, _ = triangulate(cameras, kp, keep)
    err = np.where(np.isfinite(err), err, np.nan)
    n = np.isfinite(err).sum((0, 2))
    with np.errstate(invalid="ignore"):
        return np.where(
            n > 0, np.nanmedian(np.where(n[None, :, None] > 0, err, 0.0), (0, 2)), np.inf
        )


def fix_swaps(
    cameras: Sequence[CameraModel],
    kp: np.ndarray,
    cfg: TriangulationConfig = TriangulationConfig(),
    gain: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """Undo a detector's left/right confusions before triangulating: in each view and frame
    of ``kp`` ``(V, F, 17, 3)``, the keypoints are mirrored (``SWAPS``) where that brings the
    frame's median reprojection error below ``gain`` times what it was; views in turn, twice.
    Needs three views or more (two views always agree with some 3D point).

    Returns the corrected keypoints and which views' frames were changed ``(V, F)``."""
    original = np.asarray(kp, dtype=np.float64)
    kp = original.copy()
    if len(cameras) < 3:
        return kp, np.zeros(kp.shape[:2], dtype=bool)
    cost = _frame_cost(cameras, kp, cfg)
    for _ in range(2):
        for v in range(len(cameras)):
            for perm in SWAPS.values():
                trial = kp.copy()
                trial[v] = trial[v][:, list(perm)]
                c = _frame_cost(cameras, trial, cfg)
                better = c < gain * cost
                kp[v, better] = trial[v, better]
                cost = np.where(better, c, cost)
    same = np.isclose(kp, original, equal_nan=True).all((-1, -2))
    return kp, np.asarray(~same)
