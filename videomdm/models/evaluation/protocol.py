"""The evaluation protocol with known 3D: mocap -> random cameras -> noisy 2D -> lifter.

``synthetic_views`` turns mocap clips into what the video pipeline would produce (noisy
keypoints, the lifter's rough 3D and its camera) while keeping the ground truth, so the
same clips can train VideoMDM on 2D only (x0 = lifter output) and the 3D-supervised
baseline (x0 = ground truth), and held-out clips can score reconstructions against the
truth in the camera frame (root-aligned MPJPE, PA-MPJPE, acceleration error).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from videomdm.models.evaluation.metrics import accel_error, mpjpe, n_mpjpe, pa_mpjpe
from videomdm.models.lifter.network import Lifter, LifterConfig, camera_to_world, lift_many
from videomdm.models.motion.cameras import NoiseConfig, random_view
from videomdm.models.motion.sample import MotionSample

log = logging.getLogger(__name__)

# The lifter of the protocols on mocap: trained on what its views are (``NoiseConfig()``, not
# the real detector's noise; cameras without roll), lifting at the network's own depth (the
# ladder's rungs were measured so; VideoMDM's training fits the depth to the keypoints itself)
PROTOCOL_LIFTER = LifterConfig(noise=NoiseConfig(), fit_depth_hz=None, roll_deg=0.0)


@dataclass(frozen=True)
class View:
    """One mocap clip through one random camera."""

    lifted: MotionSample  # x0 = the lifter's world joints, its camera, the noisy keypoints
    truth: MotionSample  # x0 = ground-truth world joints, the true camera, the same keypoints
    truth_cam: np.ndarray  # (T, 17, 3) ground truth in the camera frame


def synthetic_views(
    clips: list[Any],
    lifter: Lifter,
    rng: np.random.Generator,
    cameras_per_clip: int = 1,
    noise_cfg: NoiseConfig | None = None,
) -> list[View]:
    """Each clip (``MocapClip``: ``joints``, ``text``, ``name``) seen by random cameras, with
    detector-like noise, lifted by ``lifter``; in clip order, cameras innermost."""
    noise_cfg = noise_cfg or NoiseConfig()
    raw = []
    for clip in clips:
        joints = np.asarray(clip.joints, np.float64)
        for _ in range(cameras_per_clip):
            R, t, cam, _, noisy, conf = random_view(joints, rng, noise_cfg)  # noqa: N806
            raw.append((clip, joints, R, t, cam, noisy.astype(np.float32), conf.astype(np.float32)))
    lifted = lift_many(lifter, [r[5] for r in raw], [r[6] for r in raw])
    views = []
    for (clip, joints, R, t, cam, u, conf), lift_cam in zip(raw, lifted, strict=True):  # noqa: N806
        world, r_est, t_est = camera_to_world(lift_cam)
        text, name = getattr(clip, "text", ""), getattr(clip, "name", "")
        views.append(
            View(
                MotionSample(world.astype(np.float32), u, conf, r_est, t_est, text, 30.0, name),
                MotionSample(joints.astype(np.float32), u, conf, R, t, text, 30.0, name),
                cam,
            )
        )
    return views


def to_camera(world: np.ndarray, sample: MotionSample) -> np.ndarray:
    """World joints ``(T, 17, 3)`` into the sample's camera frame."""
    return np.asarray(world, np.float64) @ np.asarray(sample.R).T + np.asarray(sample.t)


def reconstruction_scores(
    preds_cam: list[np.ndarray], truths_cam: list[np.ndarray]
) -> dict[str, float]:
    """Frame-weighted MPJPE / PA-MPJPE / N-MPJPE (mm, root-aligned) and acceleration error
    (mm/frame^2) of camera-frame predictions against the truth."""
    pred, gt = np.concatenate(preds_cam), np.concatenate(truths_cam)
    acc = [
        (accel_error(p, g), len(p) - 2)
        for p, g in zip(preds_cam, truths_cam, strict=True)
        if len(p) >= 3
    ]
    return {
        "mpjpe_mm": mpjpe(pred, gt),
        "pa_mpjpe_mm": pa_mpjpe(pred, gt),
        "n_mpjpe_mm": n_mpjpe(pred, gt),
        "accel_error": float(np.average([a for a, _ in acc], weights=[w for _, w in acc])),
    }


def score_predictions(
    views: list[View], preds: Mapping[str, Sequence[np.ndarray]]
) -> dict[str, dict[str, float]]:
    """Each method's predictions, one per view in order (world joints in the view's ``lifted``
    frame), scored in the camera frame against the truth. The lifter's own are
    ``[v.lifted.joints for v in views]``."""
    out = {}
    for name, ps in preds.items():
        cams = [to_camera(p, v.lifted) for v, p in zip(views, ps, strict=True)]
        out[name] = reconstruction_scores(cams, [v.truth_cam for v in views])
        log.info("%s: %s", name, {k: round(x, 1) for k, x in out[name].items()})
    return out
