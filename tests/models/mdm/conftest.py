"""Fixtures of the denoiser tests."""

from __future__ import annotations

import numpy as np
import pytest

from videomdm.models.motion.cameras import project, sample_cameras
from videomdm.models.motion.mocap import load_mocap_dir
from videomdm.models.motion.sample import MotionSample


@pytest.fixture(scope="session")
def clean_views(assets) -> list[MotionSample]:
    """Four mocap clips (40 frames or more), each seen by one random camera with clean
    keypoints (confidence 1)."""
    clips = [c for c in load_mocap_dir(assets / "mocap") if len(c.joints) >= 40][:4]
    rng = np.random.default_rng(0)
    out = []
    for c in clips:
        j = c.joints.astype(np.float64)
        R, t = sample_cameras(1, rng, distance_m=(3.0, 8.0), target=j[:, [11, 12]].mean((0, 1)))  # noqa: N806
        u, _ = project(j @ R[0].T + t[0])
        conf = np.ones(u.shape[:2], np.float32)
        out.append(MotionSample(c.joints, u.astype(np.float32), conf, R[0], t[0]))
    return out
