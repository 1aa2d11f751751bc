"""The reconstruction video: the clip with keypoints beside its 3D skeleton from the camera and
from the side, one frame per sample, on real video frames and real mocap."""

from __future__ import annotations

import av
import numpy as np

from videomdm.models.motion.cameras import look_at
from videomdm.models.viz.reconstruction_video import (
    PinholeView,
    clip_frames,
    write_reconstruction_video,
)


def _camera(joints: np.ndarray) -> PinholeView:
    centre = joints[:, 11:13].mean((0, 1))
    R, t = look_at(centre + np.array([0.0, 0.3, 4.0]), centre)  # noqa: N806
    return PinholeView(R, t, 500.0, 500.0, 320.0, 240.0, 640, 480)


def _coloured(img: np.ndarray) -> tuple[int, int]:
    red = (img[..., 0] > 170) & (img[..., 1] < 90) & (img[..., 2] < 90)
    blue = (img[..., 2] > 140) & (img[..., 0] < 90) & (img[..., 1] > 80)
    return int(red.sum()), int(blue.sum())


def test_three_synchronised_panels(mocap, videos_dir, tmp_path):
    joints = mocap[0][:40].astype(np.float64)
    cam = _camera(joints)
    cam_pts = joints @ cam.R.T + cam.t
    px = np.stack(
        [
            500 * cam_pts[..., 0] / cam_pts[..., 2] + 320,
            500 * cam_pts[..., 1] / cam_pts[..., 2] + 240,
        ],
        -1,
    )
    frames = list(clip_frames(str(videos_dir / "sports2d_demo.mp4"), 5, 30.0, 15.0, 40))
    assert len(frames) == 40  # every other source frame (30 fps video, 15 fps clip)
    out = write_reconstruction_video(
        tmp_path / "rec.mp4", frames, px, np.ones((40, 17)), joints, cam, fps=15.0, height=480
    )
    with av.open(str(out)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 40
    h, w, _ = decoded[0].shape
    video_w = round(frames[0].shape[1] * 480 / frames[0].shape[0])
    assert h == 480 and w in (video_w + 640 + 480, video_w + 640 + 480 - 1)
    mid = decoded[20]
    camera_panel, side_panel = mid[:, video_w : video_w + 640], mid[:, video_w + 640 :]
    for panel in (camera_panel, side_panel, mid[:, :video_w]):
        red, blue = _coloured(panel)
        assert red > 100 and blue > 100  # left and right limbs drawn in every panel
    # the camera panel projects through the clip's camera: the skeleton is where the keypoints are
    ys, xs = np.nonzero(_coloured_mask(camera_panel))
    assert abs(np.median(xs) - np.median(px[20, :, 0])) < 40


def _coloured_mask(img: np.ndarray) -> np.ndarray:
    red = (img[..., 0] > 170) & (img[..., 1] < 90) & (img[..., 2] < 90)
    blue = (img[..., 2] > 140) & (img[..., 0] < 90) & (img[..., 1] > 80)
    return red | blue
