"""A lake holding one synthetic video: real mocap seen by a known camera, written as the
extract flow writes keypoints (so flow tests need no video decoding)."""

from __future__ import annotations

import numpy as np

from videomdm.flows.motion import clips_flow, lift_flow, train_lifter_flow
from videomdm.models.motion.cameras import Intrinsics, look_at, to_pixels
from videomdm.storage import Lake
from videomdm.storage.lake import rows_to_table
from videomdm.storage.markers import DONE, set_marker

EXTRACTOR = "synthetic-test"


def fake_video(lake_root: str, joints: np.ndarray) -> str:
    """A videos row and keypoints rows of one person seen by a camera 5 m away."""
    lake, vid = Lake(lake_root), "f" * 16
    lake.merge(
        "videos",
        rows_to_table(
            "videos",
            [
                dict(
                    video_id=vid,
                    uri="/nowhere/walk.mp4",
                    collection="synthetic",
                    status="ok",
                    fps=30.0,
                    width=640,
                    height=480,
                    rotation=0,
                )
            ],
        ),
        "test",
    )
    centre = joints[:, 11:13].mean((0, 1))
    R, t = look_at(centre + np.array([0.0, 0.5, 5.0]), centre, np.array([0.0, 1.0, 0.0]))  # noqa: N806
    cam = joints @ R.T + t
    px = to_pixels(cam[..., :2] / cam[..., 2:], Intrinsics.from_fov(640, 480))  # (T, 17, 2)
    rows = [
        dict(
            video_id=vid,
            extractor=EXTRACTOR,
            track_id=1,
            frame=f,
            t=f / 30,
            bbox=[0, 0, 1, 1],
            det_score=0.9,
            kp_x=px[f, :, 0].tolist(),
            kp_y=px[f, :, 1].tolist(),
            kp_score=[0.9] * 17,
        )
        for f in range(len(px))
        if f % 50 != 7
    ]  # a few missing frames to fill
    lake.append("keypoints", rows_to_table("keypoints", rows), "test")
    set_marker(lake, "keypoints", vid, EXTRACTOR, DONE, rows=len(rows))
    return vid


def lifted_lake(lake_root: str, joints: np.ndarray, mocap_dir: str) -> str:
    """``fake_video`` cut into clips, a briefly trained lifter, and the clip lifted."""
    vid = fake_video(lake_root, joints)
    clips_flow(lake=lake_root)
    train_lifter_flow([mocap_dir], steps=20, lake=lake_root)
    lift_flow(lake=lake_root)
    return vid
