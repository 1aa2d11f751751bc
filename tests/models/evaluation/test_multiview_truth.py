"""The truth's consistency: real mocap seen by the real calibration's four cameras, with pixel
noise; the truth of one view against the truths that leave out another view instead."""

from __future__ import annotations

import numpy as np
import pytest

from videomdm.models.evaluation.multiview import build_scene, truth_consistency, truth_for_view
from videomdm.models.motion.calibration import load_calibration
from videomdm.models.motion.multiview import ViewTracks


def _scene(cams, joints, noise_px, rng):
    """One person seen by every camera, as a track of detections with ``noise_px`` jitter."""
    views = []
    for cam in cams:
        px, _ = cam.project(joints)
        px = px + rng.normal(scale=noise_px, size=px.shape) if noise_px else px
        kp = np.concatenate([px, np.full(px.shape[:-1] + (1,), 0.9)], -1)
        frames = np.arange(len(kp))
        views.append(ViewTracks.from_rows(cam.name, cam, 60.0, len(kp), 0 * frames, frames, kp))
    return build_scene(views)


def test_consistency_is_a_floor_that_grows_with_the_detections_noise(assets, mocap):
    qca = assets / "multiview" / "pose2sim_multiperson" / "Calib.qca.txt"
    if not qca.exists():
        pytest.skip(f"{qca} is absent")
    cams = list(load_calibration(qca).values())
    j = mocap[0][:90].astype(np.float64)
    j = j[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])  # Y up -> the room's Z up
    walk = j - j[:, 11:13].mean((0, 1)) + np.array([-0.5, -0.2, 1.0])
    floors = []
    for noise in (0.0, 3.0, 12.0):
        scene = _scene(cams, walk, noise, np.random.default_rng(0))
        assert scene.offsets.tolist() == [0, 0, 0, 0]
        truth = truth_for_view(scene, 0, 0)
        assert truth is not None
        floors.append(truth_consistency(scene, truth))
    assert floors[0] < 1.0  # exact detections: every subset of views gives the same body
    assert floors[0] < floors[1] < floors[2] and floors[2] > 10.0
