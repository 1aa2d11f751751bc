"""A reconstruction as one video: the clip with its keypoints, beside its 3D skeleton seen from
the clip's own camera and from the side, frame for frame.

The 3D panels are drawn with OpenCV through pinhole cameras (no plotting library in the loop:
a frame costs milliseconds): the camera view uses the clip's camera, so the skeleton lands where
the person is in the video and depth errors do not show; the side view is a camera turned 90°
about the vertical through the body, where they do. Both show a floor grid at the motion's
floor height (``floor_height``) and the root's trail on it. Left limbs blue, right red.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from videomdm.models.motion.cameras import look_at
from videomdm.models.motion.skeleton import LIMBS, root
from videomdm.models.perception.video import iter_frame_batches
from videomdm.models.viz.animation import _LEFT, _RIGHT, _limb_colour
from videomdm.models.viz.ground import floor_height

_RGB = {_LEFT: (31, 119, 180), _RIGHT: (214, 39, 40)}
_MID_RGB = (80, 80, 80)
_GRID_RGB = (200, 200, 200)
_TRAIL_RGB = (120, 120, 120)


@dataclass(frozen=True)
class PinholeView:
    """A camera: world -> camera ``R`` (3, 3), ``t`` (3,), pixels ``fx, fy, cx, cy``, size."""

    R: np.ndarray
    t: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def scaled(self, height: int) -> PinholeView:
        s = height / self.height
        w = round(self.width * s)
        return PinholeView(
            self.R, self.t, self.fx * s, self.fy * s, self.cx * s, self.cy * s, w, height
        )

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(..., 3)`` to pixels ``(..., 2)`` and in-front mask ``(...,)``."""
        cam = points @ self.R.T + self.t
        z = np.maximum(cam[..., 2], 1e-6)
        px = np.stack(
            [self.fx * cam[..., 0] / z + self.cx, self.fy * cam[..., 1] / z + self.cy], -1
        )
        return px, cam[..., 2] > 0.05


def side_view(joints: np.ndarray, camera: PinholeView, size: int) -> PinholeView:
    """A square camera 90° around the body from ``camera`` (about world Y), as far from the
    body's mean root as the clip's camera, at chest height, looking at the body."""
    centre = root(joints).mean(0)
    eye_clip = -camera.R.T @ camera.t  # the clip camera's centre in the world
    away = (eye_clip - centre) * np.array([1.0, 0.0, 1.0])
    dist = max(float(np.linalg.norm(away)), 2.5)
    away = away / (np.linalg.norm(away) + 1e-9)
    side = np.array([away[2], 0.0, -away[0]])  # turned 90° about Y
    target = centre.copy()
    eye = target + side * dist + np.array([0.0, 0.3, 0.0])
    R, t = look_at(eye, target)  # noqa: N806
    span = np.ptp(joints.reshape(-1, 3), axis=0).max() + 1.0  # metres the panel must hold
    f = 0.9 * size * dist / span
    return PinholeView(R, t, f, f, size / 2, size / 2, size, size)


def draw_skeleton_view(
    view: PinholeView, pose: np.ndarray, trail: np.ndarray, floor: float, centre: np.ndarray
) -> np.ndarray:
    """One RGB panel: the floor grid around ``centre``, the root ``trail`` (n, 3) and ``pose``
    (17, 3), all in the world, seen through ``view``."""
    img = np.full((view.height, view.width, 3), 255, np.uint8)
    _grid(img, view, floor, centre)
    if len(trail) > 1:
        on_floor = trail * np.array([1.0, 0.0, 1.0]) + np.array([0.0, floor, 0.0])
        px, ok = view.project(on_floor)
        pts = px[ok].round().astype(np.int32)
        cv2.polylines(img, [pts], False, _TRAIL_RGB, 2, cv2.LINE_AA)
    px, ok = view.project(pose)
    thick = max(2, round(view.height / 160))
    for a, b in LIMBS:
        if ok[a] and ok[b]:
            colour = _RGB.get(_limb_colour(a, b), _MID_RGB)
            pa, pb = (tuple(int(v) for v in px[k].round()) for k in (a, b))
            cv2.line(img, pa, pb, colour, thick, cv2.LINE_AA)
    if ok[0]:
        cv2.circle(img, tuple(int(v) for v in px[0].round()), thick + 2, (240, 190, 0), -1)
    return img


def _grid(img: np.ndarray, view: PinholeView, floor: float, centre: np.ndarray) -> None:
    """Floor lines every 0.5 m over 6 m around ``centre`` (segments behind the camera left out)."""
    ticks = np.arange(-3.0, 3.01, 0.5)
    cx, cz = np.round(centre[0] * 2) / 2, np.round(centre[2] * 2) / 2
    for v in ticks:
        for a, b in (((cx + v, cz - 3), (cx + v, cz + 3)), ((cx - 3, cz + v), (cx + 3, cz + v))):
            line = np.linspace([a[0], floor, a[1]], [b[0], floor, b[1]], 25)
            px, ok = view.project(line)
            for i in range(len(line) - 1):
                if ok[i] and ok[i + 1]:
                    p0, p1 = (tuple(int(x) for x in px[k].round()) for k in (i, i + 1))
                    cv2.line(img, p0, p1, _GRID_RGB, 1, cv2.LINE_AA)


def draw_keypoints(frame: np.ndarray, px: np.ndarray, conf: np.ndarray, min_conf: float = 0.2):
    """The video frame with the clip's keypoints ``(17, 2)`` pixels drawn on (low-confidence
    limbs left out)."""
    img = np.ascontiguousarray(frame).copy()
    thick = max(2, round(img.shape[0] / 240))
    for a, b in LIMBS:
        if min(conf[a], conf[b]) >= min_conf and np.isfinite(px[[a, b]]).all():
            colour = _RGB.get(_limb_colour(a, b), _MID_RGB)
            pa, pb = (tuple(int(v) for v in px[k].round()) for k in (a, b))
            cv2.line(img, pa, pb, colour, thick, cv2.LINE_AA)
    return img


def _label(img: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(img, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    return img


def clip_frames(
    video_path: str, frame_start: int, video_fps: float, clip_fps: float, n: int
) -> Iterator[np.ndarray]:
    """The video frames (upright RGB) under a clip's ``n`` samples: sample ``k`` is source frame
    ``frame_start + k * video_fps / clip_fps`` (clips are resampled to the training fps); the
    last frame repeats if the video ends first."""
    wanted = np.round(frame_start + np.arange(n) * video_fps / clip_fps).astype(int)
    k, last = 0, None
    for batch in iter_frame_batches(video_path, batch_size=16, max_frames=int(wanted[-1]) + 1):
        for idx, frame in zip(batch.indices, batch.frames, strict=True):
            while k < n and wanted[k] == idx:
                yield frame
                k += 1
            last = frame
    while k < n and last is not None:
        yield last
        k += 1


def write_reconstruction_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    keypoints_px: np.ndarray,
    conf: np.ndarray,
    joints: np.ndarray,
    camera: PinholeView,
    fps: float,
    height: int = 480,
) -> Path:
    """An H.264 mp4, one frame per sample: the video frame (``frames``, RGB, one per sample)
    with ``keypoints_px`` ``(T, 17, 2)``, and ``joints`` ``(T, 17, 3)`` (world, Y up) seen
    through ``camera`` (the clip's) and from the side."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joints = np.asarray(joints, np.float64)
    cam = camera.scaled(height)
    side = side_view(joints, camera, height)
    floor, centre = floor_height(joints), root(joints).mean(0)
    trail = root(joints)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "23", "preset": "veryfast"}
        for i, frame in enumerate(frames):
            if i >= len(joints):
                break
            video = draw_keypoints(frame, keypoints_px[i], conf[i])
            width = round(video.shape[1] * height / video.shape[0])  # the video's own aspect
            video = cv2.resize(video, (width, height), interpolation=cv2.INTER_AREA)
            panels = [
                _label(video, "video + keypoints"),
                _label(
                    draw_skeleton_view(cam, joints[i], trail[: i + 1], floor, centre),
                    "3D, camera view",
                ),
                _label(
                    draw_skeleton_view(side, joints[i], trail[: i + 1], floor, centre),
                    "3D, side view",
                ),
            ]
            img = np.concatenate(panels, axis=1)
            img = img[:, : img.shape[1] - img.shape[1] % 2]
            if i == 0:
                stream.width, stream.height = img.shape[1], img.shape[0]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode(None))
    return path
