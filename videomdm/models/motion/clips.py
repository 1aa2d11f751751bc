"""Clips from one person track's 2D keypoints: usable runs, gap-filled, resampled, normalised.

A track's rows (one per frame it was detected in) are split wherever more than
``max_gap`` frames are missing; shorter holes are filled by linear interpolation with the
filled frames' scores set to ``fill_score`` (so every later weight by confidence ignores
them). Pieces that are too short or too unsure are dropped; the rest are resampled to the
training frame rate and turned into normalised image coordinates: undistorted through a known
camera (``calibration.CameraModel``), else ``cameras.to_normalised`` with intrinsics from a
known focal length, else the default field of view (along the frame's long side).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from videomdm.models.motion.calibration import CameraModel
from videomdm.models.motion.cameras import DEFAULT_FOV_DEG, Intrinsics, to_normalised
from videomdm.models.motion.skeleton import NUM_JOINTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipConfig:
    max_gap: int = 10  # source frames missing in a row that are still filled, not split
    min_frames: int = 30  # minimum clip length at the training fps (1 s at 30 fps)
    min_score: float = 0.3  # minimum mean keypoint score over the detected frames
    fps: float = 30.0  # training frame rate
    fill_score: float = 0.0  # score given to interpolated frames and NaN keypoints
    fov_deg: float = DEFAULT_FOV_DEG  # FOV along the long side when no focal length is known


@dataclass(frozen=True)
class Clip2D:
    frame_start: int  # first source frame
    frame_end: int  # one past the last source frame
    fps: float  # of u and conf (the training fps)
    u: np.ndarray  # (T, 17, 2) normalised image coordinates, float32, never NaN
    conf: np.ndarray  # (T, 17) float32 in [0, 1]
    mean_score: float  # mean keypoint score over the detected (not filled) frames
    valid_fraction: float  # detected frames / frames in the source range
    filled_frames: int  # source frames filled by interpolation
    intrinsics: Intrinsics


def _fill_piece(
    frames: np.ndarray, kp: np.ndarray, fill_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense pixels ``(F, 17, 2)``, scores ``(F, 17)`` and a detected mask ``(F,)`` over
    ``frames[0] .. frames[-1]``. Missing frames and NaN keypoints are interpolated per joint
    in time (held at the ends) and scored ``fill_score``."""
    n = int(frames[-1] - frames[0] + 1)
    rel = frames - frames[0]
    xy = np.full((n, NUM_JOINTS, 2), np.nan)
    score = np.full((n, NUM_JOINTS), fill_score)
    xy[rel], score[rel] = kp[..., :2], kp[..., 2]
    detected = np.zeros(n, dtype=bool)
    detected[rel] = True
    ok = np.isfinite(xy).all(-1) & np.isfinite(score)  # (F, 17)
    score = np.where(ok & detected[:, None], score, fill_score)
    t = np.arange(n)
    for j in np.flatnonzero(~ok.all(0)):  # np.interp is 1-D; it holds the ends constant
        for d in range(2):
            seen = ok[:, j]
            xy[:, j, d] = np.interp(t, t[seen], xy[seen, j, d]) if seen.any() else 0.0
    return xy, np.clip(score, 0.0, 1.0), detected


def _resample(values: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear interpolation of ``(F, ...)`` samples at ``src_fps`` onto ``dst_fps``."""
    if abs(src_fps - dst_fps) < 1e-6:
        return values
    n_out = int(np.floor((len(values) - 1) * dst_fps / src_fps + 1e-9)) + 1
    pos = np.arange(n_out) * src_fps / dst_fps  # (T,) in source frames
    i0 = np.minimum(pos.astype(int), len(values) - 1)
    i1 = np.minimum(i0 + 1, len(values) - 1)
    w = (pos - i0).reshape(-1, *([1] * (values.ndim - 1)))
    return (1.0 - w) * values[i0] + w * values[i1]


def make_clips(
    frames: np.ndarray,
    kp: np.ndarray,
    fps: float,
    image_size: tuple[int, int],
    cfg: ClipConfig = ClipConfig(),
    focal_px: float | None = None,
    camera: CameraModel | None = None,
) -> list[Clip2D]:
    """Clips from one track: ``frames`` ``(N,)`` frame indices, ``kp`` ``(N, 17, 3)`` pixel
    x, y and score, the video's ``fps`` and ``image_size`` (width, height). A ``camera``
    (known intrinsics and distortion) takes precedence over ``focal_px``."""
    frames = np.asarray(frames, dtype=np.int64)
    kp = np.asarray(kp, dtype=np.float64)
    if kp.shape != (len(frames), NUM_JOINTS, 3):
        raise ValueError(f"kp must be (N, {NUM_JOINTS}, 3) for N={len(frames)}, got {kp.shape}")
    if fps <= 0 or cfg.fps <= 0:
        raise ValueError(f"fps must be positive, got {fps} and cfg.fps {cfg.fps}")
    if len(frames) == 0:
        return []
    order = np.argsort(frames, kind="stable")
    frames, kp = frames[order], kp[order]
    keep = np.concatenate([[True], np.diff(frames) > 0])  # a duplicate frame: keep the first
    frames, kp = frames[keep], kp[keep]
    width, height = image_size
    if camera is not None:
        k = camera.intrinsics
        K = Intrinsics(k.fx, k.fy, k.cx, k.cy, width, height)  # noqa: N806
    elif focal_px is not None:
        K = Intrinsics(focal_px, focal_px, width / 2.0, height / 2.0, width, height)  # noqa: N806
    else:
        K = Intrinsics.from_fov(width, height, cfg.fov_deg)  # noqa: N806
    cuts = np.flatnonzero(np.diff(frames) - 1 > cfg.max_gap) + 1
    clips = []
    for piece_f, piece_kp in zip(np.split(frames, cuts), np.split(kp, cuts), strict=True):
        clip = _make_clip(piece_f, piece_kp, fps, K, cfg, camera)
        if clip is not None:
            clips.append(clip)
    return clips


def _make_clip(
    frames: np.ndarray,
    kp: np.ndarray,
    fps: float,
    K: Intrinsics,  # noqa: N803
    cfg: ClipConfig,
    camera: CameraModel | None = None,
) -> Clip2D | None:
    xy, score, detected = _fill_piece(frames, kp, cfg.fill_score)
    mean_score = float(score[detected].mean())
    normalised = to_normalised(xy, K) if camera is None else camera.undistort(xy)
    u = _resample(normalised, fps, cfg.fps)  # (T, 17, 2)
    conf = _resample(score, fps, cfg.fps)  # (T, 17)
    if len(u) < cfg.min_frames or mean_score < cfg.min_score:
        log.debug(
            "dropped frames %d-%d: %d frames at %g fps, mean score %.2f",
            frames[0],
            frames[-1],
            len(u),
            cfg.fps,
            mean_score,
        )
        return None
    return Clip2D(
        frame_start=int(frames[0]),
        frame_end=int(frames[-1]) + 1,
        fps=cfg.fps,
        u=u.astype(np.float32),
        conf=conf.astype(np.float32),
        mean_score=mean_score,
        valid_fraction=float(detected.mean()),
        filled_frames=int((~detected).sum()),
        intrinsics=K,
    )
