"""Pinhole cameras, random viewpoints around a subject, and a detector-like 2D noise model.

Conventions (everything else in the project relies on them):
- camera frame is OpenCV's: x right, y down, z forward (depth);
- extrinsics map world to camera, ``X_cam = R @ X_world + t`` (R ``(3, 3)``, t ``(3,)``);
- normalised image coordinates are ``u = (x / z, y / z)``; pixels are ``K`` applied to them,
  with intrinsics fx, fy, cx, cy.

``project``, ``world_to_camera``, ``backproject_rays``, ``to_normalised`` and ``to_pixels``
accept numpy arrays and torch tensors alike (the losses project through them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.signal

from videomdm.models.motion.skeleton import FLIP_PERM, NUM_JOINTS, root

# Field of view along the frame's LONG side assumed when a video carries no focal length:
# 60 degrees is typical of phone main cameras and webcams (26-28 mm equivalent is 65-75 deg
# across the long side; 60 errs towards the narrower consumer lenses). Along the long side,
# because a phone filming upright (portrait) keeps its lens: across the short side a 1080x1920
# portrait video would get 935 px where its camera has about 1660 (the multi-view recording's
# calibration: 1673-1682 px).
DEFAULT_FOV_DEG = 60.0


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float = DEFAULT_FOV_DEG) -> Intrinsics:
        """Square pixels, principal point at the image centre, ``fov_deg`` across the frame's
        long side (horizontal for landscape, vertical for portrait)."""
        if not 0.0 < fov_deg < 180.0:
            raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
        f = 0.5 * max(width, height) / math.tan(math.radians(fov_deg) / 2.0)
        return cls(f, f, width / 2.0, height / 2.0, int(width), int(height))

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the usual name
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


def _fxfycxcy(K: Intrinsics | Any) -> tuple[float, float, float, float]:  # noqa: N803
    if isinstance(K, Intrinsics):
        return K.fx, K.fy, K.cx, K.cy
    k = np.asarray(K, dtype=np.float64)
    return float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def to_normalised(px: Any, K: Intrinsics | Any) -> Any:  # noqa: N803
    """Pixels ``(..., 2)`` to normalised image coordinates ``(..., 2)``."""
    fx, fy, cx, cy = _fxfycxcy(K)
    out = px * 1.0  # a float copy for numpy and torch alike
    out[..., 0] = (px[..., 0] - cx) / fx
    out[..., 1] = (px[..., 1] - cy) / fy
    return out


def to_pixels(u: Any, K: Intrinsics | Any) -> Any:  # noqa: N803
    """Normalised image coordinates ``(..., 2)`` to pixels ``(..., 2)``."""
    fx, fy, cx, cy = _fxfycxcy(K)
    out = u * 1.0
    out[..., 0] = u[..., 0] * fx + cx
    out[..., 1] = u[..., 1] * fy + cy
    return out


def project(X_cam: Any, min_depth: float = 1e-3) -> tuple[Any, Any]:  # noqa: N803
    """Camera-frame points ``(..., 3)`` to normalised coordinates ``(..., 2)`` and a validity
    mask ``(...,)`` (depth above ``min_depth``). Depth is clamped at ``min_depth`` so points
    behind the camera give finite values (and finite gradients); mask them out."""
    z = X_cam[..., 2:3]
    return X_cam[..., :2] / z.clip(min=min_depth), X_cam[..., 2] > min_depth


def world_to_camera(X: Any, R: Any, t: Any) -> Any:  # noqa: N803
    """``X_cam = R @ X + t`` for points ``(..., J, 3)``; R ``(..., 3, 3)``, t ``(..., 3)``
    broadcast over the leading dimensions."""
    return X @ R.swapaxes(-1, -2) + t[..., None, :]


def backproject_rays(u: Any) -> Any:
    """Normalised coordinates ``(..., 2)`` to unit ray directions in the camera frame
    ``(..., 3)``: the ray through ``u`` is ``s * d`` for depths ``s > 0``."""
    if _is_torch(u):
        import torch

        d = torch.cat([u, torch.ones_like(u[..., :1])], dim=-1)
        return d / torch.linalg.norm(d, dim=-1, keepdim=True)
    u_np = np.asarray(u, dtype=np.float64)
    d_np = np.concatenate([u_np, np.ones_like(u_np[..., :1])], axis=-1)
    return d_np / np.linalg.norm(d_np, axis=-1, keepdims=True)


def look_at(
    eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 1.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Extrinsics of a camera at ``eye`` looking at ``target``, world ``up`` appearing up in
    the image. ``eye``/``target`` ``(..., 3)``; returns R ``(..., 3, 3)``, t ``(..., 3)``."""
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    x = np.cross(z, np.broadcast_to(np.asarray(up, dtype=np.float64), z.shape))  # right
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norm < 1e-9):
        raise ValueError("look_at: viewing direction is parallel to up")
    x = x / norm
    y = np.cross(z, x)  # down
    R = np.stack([x, y, z], axis=-2)  # noqa: N806 - rows are the camera axes in world
    t = -np.einsum("...ij,...j->...i", R, eye)
    return R, t


def sample_cameras(
    n: int,
    rng: np.random.Generator,
    azimuth: tuple[float, float] = (0.0, 360.0),
    elevation_deg: tuple[float, float] = (-5.0, 30.0),
    distance_m: tuple[float, float] = (2.0, 10.0),
    target: np.ndarray | tuple[float, float, float] = (0.0, 1.0, 0.0),
    roll_deg: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` cameras on a sphere around ``target`` (``(3,)`` or ``(n, 3)``, world, Y up), each
    looking at it: azimuth (deg, about +Y from +Z), elevation (deg, above the target's
    horizontal plane) and distance (m) drawn uniformly; each turned about its optical axis by
    a roll drawn in +-``roll_deg`` (a hand-held or tilted phone; 0 draws nothing, so the
    random stream is that of a camera without roll). Returns R ``(n, 3, 3)``, t ``(n, 3)``."""
    for name, (lo, hi) in {
        "azimuth": azimuth,
        "elevation_deg": elevation_deg,
        "distance_m": distance_m,
    }.items():
        if hi < lo:
            raise ValueError(f"{name} range must be (low, high), got {(lo, hi)}")
    if not -90.0 < elevation_deg[0] <= elevation_deg[1] < 90.0 or distance_m[0] <= 0.0:
        raise ValueError("elevation must lie inside (-90, 90) deg and distance be positive")
    az = np.radians(rng.uniform(*azimuth, size=n))
    el = np.radians(rng.uniform(*elevation_deg, size=n))
    dist = rng.uniform(*distance_m, size=n)
    offset = np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], axis=-1)
    tgt = np.broadcast_to(np.asarray(target, dtype=np.float64), (n, 3))
    R, t = look_at(tgt + dist[:, None] * offset, tgt)  # noqa: N806
    if roll_deg:
        r = np.radians(rng.uniform(-roll_deg, roll_deg, size=n))
        cos, sin, zero, one = np.cos(r), np.sin(r), np.zeros(n), np.ones(n)
        rz = np.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], -1).reshape(n, 3, 3)
        R, t = rz @ R, np.einsum("nij,nj->ni", rz, t)  # noqa: N806
    return R, t


# --- detector-like 2D noise -------------------------------------------------------------

# COCO keypoint OKS sigmas: how loosely annotators (and detectors) place each joint.
COCO_SIGMAS = np.array(
    [
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ]
)
# left/right groups a detector confuses as a whole: arms (elbow, wrist), legs (knee, ankle)
SWAP_GROUPS: tuple[tuple[int, ...], ...] = ((7, 9), (13, 15))


@dataclass(frozen=True)
class NoiseConfig:
    jitter_px: float = 4.0  # mean Gaussian std per coordinate, scaled per joint by COCO_SIGMAS
    # correlation time of the jitter in frames (AR(1), lag-1 correlation e^(-1/frames)); 0:
    # independent per frame. A real detector repeats its error over neighbouring frames
    jitter_corr_frames: float = 0.0
    # std of a constant offset of each joint for the whole clip (a detector's idea of where a
    # joint is differs from the mocap skeleton's, and from person to person)
    joint_bias_px: float = 0.0
    focal_px: float = 1000.0  # pixel-equivalent: normalised noise = pixel noise / focal_px
    outlier_prob: float = 0.01  # per point: a gross error of outlier_px std
    outlier_px: float = 40.0
    swap_prob: float = 0.02  # per frame and limb group: left/right limbs exchanged
    # share of frames in which the whole body is mirrored left/right, in episodes of
    # body_swap_frames frames on average (a detector sure of a person seen from behind)
    body_swap_prob: float = 0.0
    body_swap_frames: float = 8.0
    dropout_prob: float = 0.03  # per point: lost (score near 0, position scattered)
    dropout_px: float | None = None  # the scatter of a lost point (default: outlier_px)
    score_max: float = 0.95  # score of a perfect detection
    score_err_px: float = 12.0  # error (px) at which the score falls to score_max * e^-0.5
    # When set, the pixel values above are pixels of a pose whose 2D RMS spread is body_px
    # pixels, so the noise grows with the person's size in the image (a detector works on a
    # resized crop: its errors scale with the person, as measured on real video); unset, they
    # are pixels at focal_px, the same at any distance.
    body_px: float | None = None
    joint_scale: tuple[float, ...] | None = None  # per-joint std factors (default: COCO's)


# The YOLO11n-pose keypoints' errors as measured on a real calibrated recording (Pose2Sim's
# multi-person demo: each view's keypoints against the person triangulated from the other
# views, ``benchmarks/multiview_noise.py`` -> ``fit_noise``), rounded: errors twice the
# default's, relative to the person's size, correlated over 1/4 s, 5% outliers, 9% missed,
# 5% of frames mirrored, scores that barely follow the error. A lifter trained on it scored
# PA-MPJPE 7.4% better than on the default on a second recording held out from the fit
# (Pose2Sim's single-person demo; docs/multiview.md).
DETECTOR_NOISE = NoiseConfig(
    jitter_px=7.5,
    jitter_corr_frames=7.8,
    joint_bias_px=6.9,
    outlier_prob=0.049,
    outlier_px=60.0,
    swap_prob=0.0,
    body_swap_prob=0.048,
    dropout_prob=0.088,
    dropout_px=0.0,
    score_max=0.99,
    score_err_px=300.0,
    body_px=100.0,
    joint_scale=(1.34, 0.5, 0.5, 0.5, 0.5, 0.83, 0.83, 1.31, 1.31, 2.07, 2.07)
    + (0.62, 0.62, 0.76, 0.76, 1.23, 1.23),
)


def add_2d_noise(
    u: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig = NoiseConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt clean normalised keypoints ``(T, 17, 2)`` like a 2D pose detector would.

    Returns noisy keypoints ``(T, 17, 2)`` and confidences ``(T, 17)`` in [0, 1] that match
    the damage: a point's score falls with its actual error (jitter, outlier or swap), and
    dropped points score below 0.05.
    """
    u = np.asarray(u, dtype=np.float64)
    if u.ndim != 3 or u.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"expected keypoints (T, {NUM_JOINTS}, 2), got {u.shape}")
    n_frames = u.shape[0]
    unit = _pixels_per_unit(u, cfg)  # (T, 1, 1)
    px = u * unit  # (T, 17, 2) pixel-equivalent
    noisy = px.copy()
    episodes = _episodes(n_frames, cfg.body_swap_prob, cfg.body_swap_frames, rng)
    noisy[episodes] = px[episodes][:, list(FLIP_PERM)]
    for group in SWAP_GROUPS:
        swap = np.flatnonzero(rng.random(n_frames) < cfg.swap_prob)  # frames swapped
        idx = np.array(list(group) + [FLIP_PERM[j] for j in group])
        partner = np.array([FLIP_PERM[j] for j in group] + list(group))
        noisy[np.ix_(swap, idx)] = px[np.ix_(swap, partner)]
    profile = COCO_SIGMAS / COCO_SIGMAS.mean() if cfg.joint_scale is None else cfg.joint_scale
    sigma = cfg.jitter_px * np.asarray(profile)  # (17,)
    noisy += _correlated_normal(px.shape, cfg.jitter_corr_frames, rng) * sigma[None, :, None]
    if cfg.joint_bias_px > 0:
        noisy += rng.normal(scale=cfg.joint_bias_px, size=(1, NUM_JOINTS, 2))
    outlier = rng.random(px.shape[:2]) < cfg.outlier_prob
    noisy += outlier[..., None] * rng.normal(scale=cfg.outlier_px, size=px.shape)
    err = np.linalg.norm(noisy - px, axis=-1)  # (T, 17)
    score = cfg.score_max * np.exp(-0.5 * (err / cfg.score_err_px) ** 2)
    score *= rng.uniform(0.85, 1.0, size=score.shape)  # detectors are not calibrated exactly
    dropped = rng.random(px.shape[:2]) < cfg.dropout_prob
    scatter = cfg.outlier_px if cfg.dropout_px is None else cfg.dropout_px
    noisy[dropped] += rng.normal(scale=scatter, size=(int(dropped.sum()), 2))
    score[dropped] = rng.uniform(0.0, 0.05, size=int(dropped.sum()))
    return noisy / unit, np.clip(score, 0.0, 1.0)


def _correlated_normal(
    shape: tuple[int, ...], corr_frames: float, rng: np.random.Generator
) -> np.ndarray:
    """Unit-variance Gaussian noise ``shape`` (time first), an AR(1) process along time with
    lag-1 correlation ``exp(-1 / corr_frames)`` (independent when ``corr_frames`` is 0)."""
    n = rng.normal(size=shape)
    if corr_frames <= 0 or shape[0] < 2:
        return n
    rho = math.exp(-1.0 / corr_frames)
    n[1:] *= math.sqrt(1.0 - rho * rho)
    return scipy.signal.lfilter([1.0], [1.0, -rho], n, axis=0)


def _episodes(n: int, share: float, mean_len: float, rng: np.random.Generator) -> np.ndarray:
    """A mask ``(n,)`` of frames inside episodes that start at random, last
    ``mean_len`` frames on average (geometric) and cover about ``share`` of the frames."""
    mask = np.zeros(n, dtype=bool)
    if share <= 0:
        return mask
    starts = np.flatnonzero(rng.random(n) < share / max(mean_len * (1.0 - share), 1e-9))
    for start, length in zip(
        starts, rng.geometric(1.0 / max(mean_len, 1.0), len(starts)), strict=True
    ):
        mask[start : start + length] = True
    return mask


def _pixels_per_unit(u: np.ndarray, cfg: NoiseConfig) -> np.ndarray:
    """``(T, 1, 1)``: the noise model's pixels per normalised unit, per frame."""
    if cfg.body_px is None:
        return np.full((len(u), 1, 1), cfg.focal_px)
    spread = np.sqrt(((u - u.mean(1, keepdims=True)) ** 2).sum(-1).mean(1))  # (T,)
    return (cfg.body_px / np.maximum(spread, 1e-6))[:, None, None]


# --- cameras around a motion, and one view of it ----------------------------------------


def clip_camera(
    joints: np.ndarray, rng: np.random.Generator, roll_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """A random camera (R ``(3, 3)``, t ``(3,)``) looking at a motion ``(T, 17, 3)`` from
    2-10 m beyond the motion's horizontal extent, so no joint comes within 1.5 m of it; rolled
    by up to ``roll_deg`` (``sample_cameras``)."""
    rt = root(joints)  # (T, 3)
    centre = rt.mean(0)
    extent = np.linalg.norm((joints - centre)[..., [0, 2]], axis=-1).max()
    near = max(2.0, extent + 1.5)
    R, t = sample_cameras(  # noqa: N806
        1, rng, distance_m=(near, near + 8.0), target=centre, roll_deg=roll_deg
    )
    return R[0], t[0]


def random_view(joints: np.ndarray, rng: np.random.Generator, noise_cfg: NoiseConfig):
    """One random camera's view of a motion ``(T, 17, 3)``: the camera (R, t), camera-frame
    joints, clean u, detector-like noisy u and its confidences."""
    R, t = clip_camera(joints, rng)  # noqa: N806
    cam = joints @ R.T + t  # (T, 17, 3)
    u, _ = project(cam)
    noisy, conf = add_2d_noise(u, rng, noise_cfg)
    return R, t, cam, u, noisy, conf
