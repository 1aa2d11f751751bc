"""The real 2D detector's errors next to the synthetic noise model's, in the units the lifter
sees: a keypoint's error divided by its pose's 2D size ``s`` (the confidence-weighted RMS
distance of the keypoints from their centroid, ``lifter.make_features``'s scale), so a near
and a far person compare.

Real errors are the evaluated view's detections minus the truth from the other views
projected into it (``multiview.heldout_residuals``); the truth's own error is in them too, so
they bound the detector's error from above. Synthetic errors are ``cameras.add_2d_noise`` on
mocap seen by the lifter's training cameras.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from videomdm.models.evaluation.multiview import Scene, Truth, heldout_residuals
from videomdm.models.motion.cameras import COCO_SIGMAS, NoiseConfig, add_2d_noise, clip_camera
from videomdm.models.motion.multiview import at_times
from videomdm.models.motion.skeleton import FLIP_PERM, NUM_JOINTS
from videomdm.models.motion.triangulation import fix_swaps

log = logging.getLogger(__name__)

MIN_SCORE = 0.3  # a keypoint below this counts as missed, not as an error
OUTLIER_SIGMAS = 5.0  # an error beyond this many robust stds of its joint is an outlier


@dataclass(frozen=True)
class NoiseStats:
    """Relative 2D errors (error / s) of confident keypoints."""

    sigma: tuple[float, ...]  # per joint: robust std per coordinate (1.4826 MAD) of inliers
    outlier_rate: float  # share of confident points beyond OUTLIER_SIGMAS of their joint
    outlier_size: float  # median size (relative) of the outliers
    missed_rate: float  # share of points scored below MIN_SCORE
    score_slope: float  # median score of points with error under 1 sigma minus over 3 sigma
    points: int
    corr_s: float = 0.0  # correlation time of the errors (s): lag-1 correlation e^(-dt / corr_s)
    # robust std per coordinate of each sequence's constant per-joint offset, its common shift
    # removed (a detector placing a joint elsewhere than the mocap joint, for a whole clip)
    bias: float = 0.0

    @property
    def mean_sigma(self) -> float:
        return float(np.mean(self.sigma))

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self) | {"mean_sigma": self.mean_sigma}


def pose_spread(xy: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per frame ``(F,)``: the score-weighted RMS distance of ``xy`` ``(F, 17, 2)`` from its
    centroid (NaN points and scores below MIN_SCORE left out)."""
    w = np.where((score >= MIN_SCORE) & np.isfinite(xy).all(-1), score, 0.0)
    x = np.nan_to_num(xy)
    wsum = np.maximum(w.sum(1), 1e-9)
    c = (w[..., None] * x).sum(1) / wsum[:, None]
    spread = (w * ((x - c[:, None]) ** 2).sum(-1)).sum(1) / wsum
    return np.where(w.sum(1) > 0, np.sqrt(spread), np.nan)


def noise_stats(err: np.ndarray, score: np.ndarray) -> NoiseStats:
    """Statistics of relative errors ``err`` ``(N, 17, 2)`` (NaN: unknown) with the detector's
    ``score`` ``(N, 17)``."""
    known = np.isfinite(err).all(-1)
    missed = float((score[known] < MIN_SCORE).mean())
    ok = known & (score >= MIN_SCORE)
    sigma = np.empty(NUM_JOINTS)
    for j in range(NUM_JOINTS):
        e = err[ok[:, j], j]
        sigma[j] = 1.4826 * np.median(np.abs(e - np.median(e, axis=0))) if len(e) else np.nan
    size = np.linalg.norm(err, axis=-1)  # (N, 17)
    z = size / (sigma[None, :] * np.sqrt(2.0))
    outlier = ok & (z > OUTLIER_SIGMAS)
    good, bad = ok & (z < 1.0), ok & (z > 3.0)
    slope = float(np.median(score[good]) - np.median(score[bad])) if bad.any() else 0.0
    return NoiseStats(
        sigma=tuple(float(x) for x in sigma),
        outlier_rate=float(outlier.sum() / max(ok.sum(), 1)),
        outlier_size=float(np.median(size[outlier])) if outlier.any() else 0.0,
        missed_rate=missed,
        score_slope=slope,
        points=int(ok.sum()),
    )


def correlation_time(errs: Sequence[np.ndarray], fps: float, lag: int = 2) -> float:
    """Correlation time (s) of error sequences ``(F, 17, 2)`` (each joint's median removed)
    from their correlation at ``lag`` frames, as an exponential decay; errors beyond 3
    robust stds of their joint (outliers, swaps) are left out, so the jitter's is measured."""
    a_all, b_all = [], []
    for e in errs:
        e = e - np.nanmedian(e, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(e), axis=0)
        e = np.where(np.abs(e) <= 3 * mad, e, np.nan)
        ok = np.isfinite(e[:-lag]) & np.isfinite(e[lag:])
        a_all.append(e[:-lag][ok])
        b_all.append(e[lag:][ok])
    a, b = np.concatenate(a_all), np.concatenate(b_all)
    rho = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 else 0.0
    return lag / fps / -np.log(rho) if 0 < rho < 1 else 0.0


def real_errors(scene: Scene, truths: Sequence[Truth]) -> tuple[np.ndarray, np.ndarray]:
    """Each truth's evaluated view: relative errors ``(N, 17, 2)`` and scores ``(N, 17)``."""
    errs, scores = real_error_runs(scene, truths)
    return np.concatenate(errs), np.concatenate(scores)


def real_error_runs(
    scene: Scene, truths: Sequence[Truth]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``real_errors`` per truth, in time order."""
    errs, scores = [], []
    for truth in truths:
        det = scene.keypoints[truth.person][truth.view]  # (F, 17, 3)
        s = pose_spread(det[..., :2], det[..., 2])  # (F,)
        res = heldout_residuals(scene, truth, min_score=0.0)
        errs.append(res / s[:, None, None])
        scores.append(np.nan_to_num(det[..., 2]))
    return errs, scores


def swap_share(scene: Scene, min_views: int = 3) -> float:
    """Share of (view, frame) detections of people seen in ``min_views`` views or more that
    triangulate better left/right mirrored (``triangulation.fix_swaps``)."""
    changed, total = 0, 0
    for person, kps in zip(scene.people, scene.keypoints, strict=True):
        views = person.views()
        if len(views) < min_views:
            continue
        times = np.arange(scene.views[views[0]].n_frames) - scene.offsets[views[0]]
        kp = at_times([kps[v] for v in views], scene.offsets[views], times)
        _, swapped = fix_swaps([scene.views[v].camera for v in views], kp)
        seen = np.isfinite(kp[..., 0]).any(-1)  # (V, F)
        changed += int((swapped & seen).sum())
        total += int(seen.sum())
    return changed / max(total, 1)


@dataclass(frozen=True)
class DetectorNoise:
    """The real detector's errors on a recording and the noise model fitted to them."""

    measured: NoiseStats
    body_swap_share: float
    fitted: NoiseConfig

    def to_dict(self) -> dict[str, object]:
        return {
            "measured": self.measured.to_dict(),
            "body_swap_share": self.body_swap_share,
            "fitted": dataclasses.asdict(self.fitted),
        }


def split_bias(errs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Each error sequence ``(F, 17, 2)`` less its per-joint median (the within-sequence
    part), and the robust std per coordinate of those medians once each sequence's common
    shift (the mean over joints, a calibration or framing offset) is removed."""
    within, offsets = [], []
    for e in errs:
        med = np.nanmedian(e, axis=0)  # (17, 2)
        within.append(e - med)
        offsets.append(med - np.nanmean(med, axis=0))
    o = np.concatenate(offsets).ravel()
    o = o[np.isfinite(o)]
    return within, float(1.4826 * np.median(np.abs(o - np.median(o)))) if len(o) else 0.0


def measure_detector(scene: Scene, truths: Sequence[Truth]) -> DetectorNoise:
    """``real_errors`` of every truth split into a constant per-sequence offset of each joint
    and what varies within a sequence; their statistics, swaps, and the fitted model."""
    errs, scores = real_error_runs(scene, truths)
    within, bias = split_bias(errs)
    fps = scene.views[truths[0].view].fps
    stats = noise_stats(np.concatenate(within), np.concatenate(scores))
    corr = correlation_time(within, fps, lag=round(fps / 30))
    stats = dataclasses.replace(stats, corr_s=corr, bias=bias)
    share = swap_share(scene)
    return DetectorNoise(stats, share, fit_noise(stats, share))


def synthetic_errors(
    motions: Sequence[np.ndarray], cfg: NoiseConfig, rng: np.random.Generator, cameras: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """The noise model on mocap ``(T, 17, 3)`` through the lifter's training cameras:
    relative errors ``(N, 17, 2)`` and scores ``(N, 17)``."""
    errs, scores = [], []
    for joints in motions:
        for _ in range(cameras):
            R, t = clip_camera(joints, rng)  # noqa: N806
            cam = joints @ R.T + t
            u = cam[..., :2] / cam[..., 2:]
            noisy, conf = add_2d_noise(u, rng, cfg)
            s = pose_spread(u, np.ones(u.shape[:2]))
            errs.append((noisy - u) / s[:, None, None])
            scores.append(conf)
    return np.concatenate(errs), np.concatenate(scores)


def fit_noise(
    real: NoiseStats,
    body_swap_share: float,
    base: NoiseConfig = NoiseConfig(),
    body_px: float = 100.0,
    score_blur: float = 40.0,
    fps: float = 30.0,
) -> NoiseConfig:
    """A ``NoiseConfig`` whose errors scale with the pose's 2D size (``body_px``: the spread
    its pixel values refer to) and match ``real``: per-joint jitter correlated over time (at
    ``fps``, the clips' frame rate), the same on both sides of the body; outliers; whole-body
    and limb swaps (``body_swap_share`` of frames, as whole-body episodes); keypoints scored
    low at an ordinary error (a real detector's low scores do not mark wrong positions); and
    scores that say little about the error (they fall to ``e^-0.5`` of their top at
    ``score_blur`` times the jitter)."""
    sigma = np.asarray(real.sigma) * body_px  # pixels of a body spread over body_px
    # a detector has no side: which side faced which camera is the recording's
    sigma = (sigma + sigma[list(FLIP_PERM)]) / 2.0
    jitter = float(sigma.mean())
    return dataclasses.replace(
        base,
        body_px=body_px,
        jitter_px=jitter,
        jitter_corr_frames=float(real.corr_s * fps),  # at the clips' frame rate
        joint_bias_px=float(real.bias * body_px),
        joint_scale=tuple(float(x) for x in sigma / jitter),
        outlier_prob=real.outlier_rate,
        outlier_px=float(real.outlier_size * body_px / np.sqrt(2.0)),  # per coordinate
        body_swap_prob=body_swap_share,
        swap_prob=0.0,  # the measured swaps (body_swap_share) count limb swaps too
        dropout_prob=real.missed_rate,
        dropout_px=0.0,  # scored low, placed as well as the others
        score_max=0.99,
        score_err_px=score_blur * jitter,
    )


def coco_profile() -> np.ndarray:
    """The synthetic model's default per-joint profile (``COCO_SIGMAS``, mean 1)."""
    return COCO_SIGMAS / COCO_SIGMAS.mean()
