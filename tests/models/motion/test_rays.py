"""Motion made consistent with its keypoints by geometry (``motion.rays``)."""

from __future__ import annotations

import numpy as np

from videomdm.models.motion.cameras import project, sample_cameras
from videomdm.models.motion.rays import fit_depth, keypoint_consistent, snap_to_rays
from videomdm.models.motion.skeleton import root


def test_a_wrong_lift_is_moved_onto_its_keypoints_and_to_their_depth(mocap):
    truth = mocap[0][:90].astype(np.float64)
    R, t = sample_cameras(1, np.random.default_rng(0), distance_m=(4.0, 4.0), target=truth[0, 0])  # noqa: N806
    R, t = R[0], t[0]  # noqa: N806
    u, _ = project(truth @ R.T + t)
    conf = np.full(u.shape[:2], 0.9)
    rng = np.random.default_rng(1)
    # a lift 25% too far, jittering in depth from frame to frame, its pose 5 cm off laterally
    cam = truth @ R.T + t
    jitter = 1.25 + 0.1 * rng.standard_normal(len(cam))
    cam = cam - root(cam)[:, None] + (jitter[:, None] * root(cam))[:, None]
    cam[..., :2] += 0.05 * rng.standard_normal(cam[..., :2].shape)
    lifted = (cam - t) @ R
    conf[:, 9] = 0.0  # the left wrist unseen: it keeps the lift's position (moved in depth)
    out = keypoint_consistent(lifted, R, t, u, conf, depth_hz=1.0)
    out_cam = out @ R.T + t
    seen = conf > 0
    assert np.abs(project(out_cam)[0] - u)[seen].max() < 1e-6  # on the keypoints' rays
    err_before = np.linalg.norm(lifted - truth, axis=-1).mean()
    err_after = np.linalg.norm(out - truth, axis=-1).mean()
    # measured: 1.00 m -> 0.07 m (the depth follows the keypoints' size, low-passed)
    assert err_after < 0.15 * err_before, (err_before, err_after)
    # the unseen wrist moved with the body along the root's ray, not onto a ray of its own
    shift = out_cam[:, 9] - cam[:, 9]
    assert np.abs(np.cross(shift, root(cam))).max() < 1e-5 < np.abs(shift).max()  # float32


def test_a_missing_keypoint_leaves_its_joint_where_it_is():
    x = np.array([[0.3, -0.2, 4.0], [0.0, 0.0, 2.0]])
    u = np.array([[0.0, 0.0], [np.nan, np.nan]])
    out = snap_to_rays(x, u)
    np.testing.assert_allclose(out[0], [0.0, 0.0, 4.0])  # nearest point of the optical axis
    np.testing.assert_allclose(out[1], x[1])


def test_fit_depth_moves_the_body_until_its_projection_has_the_keypoints_size(mocap):
    joints = mocap[0][:60].astype(np.float64)
    R, t = sample_cameras(1, np.random.default_rng(3), distance_m=(4.0, 4.0))  # noqa: N806
    cam = joints @ R[0].T + t[0]
    u, _ = project(cam)
    conf = np.full(u.shape[:2], 0.9)
    far = cam - root(cam)[:, None] + 1.2 * root(cam)[:, None]  # the same body 20% farther
    fixed = fit_depth(far, u, conf, smooth_hz=100.0)
    np.testing.assert_allclose(root(fixed), root(cam), rtol=0.03)
    np.testing.assert_allclose(fixed - root(fixed)[:, None], cam - root(cam)[:, None], atol=1e-5)
    wobbly = far.copy()
    wobbly[::2] += root(far)[::2, None] * 0.2  # depth jumping 20% every other frame
    smooth = fit_depth(wobbly, u, conf, smooth_hz=1.0)
    assert np.abs(np.diff(root(smooth)[:, 2])).max() < 0.05
