"""One clip as training and reconstruction see it: rough 3D, its 2D keypoints, its camera.

A ``MotionSample`` holds world joints ``(T, 17, 3)`` (the lifter's output, or ground truth for
the 3D-supervised baseline), the observed keypoints in normalised camera coordinates ``u``
``(T, 17, 2)`` with confidences ``(T, 17)``, and the camera ``X_cam = R X_world + t``. Plain
numpy, so the lake's row codecs can build it without loading torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from videomdm.models.motion.skeleton import body_size_factor


@dataclass(frozen=True)
class MotionSample:
    joints: np.ndarray  # (T, 17, 3) world, metres, Y up: x0 (lifter output or ground truth)
    u: np.ndarray  # (T, 17, 2) observed keypoints, normalised camera coordinates (NaN: missing)
    conf: np.ndarray  # (T, 17) keypoint confidence
    R: np.ndarray  # (3, 3) world -> camera  # noqa: N815
    t: np.ndarray  # (3,)
    text: str = ""
    fps: float = 30.0
    clip_id: str = ""


def body_size_gauge(joints: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World joints ``(T, 17, 3)`` and camera translation ``(3,)`` scaled together by
    ``body_size_factor``: the body gets the population's size and its projection through
    ``(R, k t)`` is unchanged, so the keypoints still match."""
    k = body_size_factor(joints)
    return (joints * k).astype(joints.dtype), np.asarray(t) * k


def to_body_size(s: MotionSample) -> MotionSample:
    """The sample in the body-size gauge (``body_size_gauge``)."""
    joints, t = body_size_gauge(s.joints, s.t)
    return dataclasses.replace(s, joints=joints, t=t)
