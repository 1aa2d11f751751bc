"""The monocular side of the multi-view yardstick: one view's tracks cut into clips as the
pipeline cuts them, lifted, and each prediction scored against its person's truth.

A clip runs at the training frame rate; its frame ``k`` shows the view's source frame
``frame_start + k * source_fps / clip_fps``, where the truth is sampled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from videomdm.models.evaluation.multiview import (
    MultiviewConfig,
    Scene,
    Truth,
    TruthQuality,
    truth_for_view,
    truth_quality,
)
from videomdm.models.evaluation.pose_scores import MotionScores, mean_scores, motion_scores
from videomdm.models.lifter.network import Lifter, camera_to_world, lift_many
from videomdm.models.motion.calibration import CameraModel
from videomdm.models.motion.clips import Clip2D, ClipConfig, make_clips
from videomdm.models.motion.sample import MotionSample
from videomdm.models.motion.triangulation import sample_at

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewClip:
    """One clip of a person's track in the evaluated view, with its truth and the lift."""

    person: int
    track: int
    clip: Clip2D
    truth_cam: np.ndarray  # (T, 17, 3) the truth at the clip's frames, camera frame
    lifted_cam: np.ndarray  # (T, 17, 3) the lifter's camera-frame joints

    def sample(self) -> MotionSample:
        """The clip as VideoMDM reconstructs it: the lift in its gravity-aligned world."""
        world, R, t = camera_to_world(self.lifted_cam)  # noqa: N806
        name = f"p{self.person}-t{self.track}-{self.clip.frame_start}"
        return MotionSample(
            world.astype(np.float32), self.clip.u, self.clip.conf, R, t, "", self.clip.fps, name
        )


def cut_view_clips(
    scene: Scene,
    truth: Truth,
    camera: CameraModel | None,
    cfg: ClipConfig,
) -> list[tuple[int, Clip2D, np.ndarray]]:
    """The person's tracks in the evaluated view cut into clips (``make_clips``, through
    ``camera``, or the default field of view when None): ``(track, clip, truth_cam)`` with
    the truth at the clip's frames."""
    view = scene.views[truth.view]
    size = (view.camera.intrinsics.width, view.camera.intrinsics.height)
    out = []
    for tid in scene.people[truth.person].tracks[truth.view]:
        kp = view.kp[view.track_ids.index(tid)]
        frames = np.flatnonzero(np.isfinite(kp[..., :2]).all(-1).any(-1))
        for clip in make_clips(frames, kp[frames], view.fps, size, cfg, camera=camera):
            times = clip.frame_start + np.arange(len(clip.u)) * view.fps / clip.fps
            out.append((tid, clip, sample_at(truth.joints_cam, times)))
    return out


def lift_view(
    lifter: Lifter, truth: Truth, clips: list[tuple[int, Clip2D, np.ndarray]]
) -> list[ViewClip]:
    """Each clip lifted to the camera frame."""
    lifted = lift_many(lifter, [c.u for _, c, _ in clips], [c.conf for _, c, _ in clips])
    return [
        ViewClip(truth.person, tid, clip, gt, cam)
        for (tid, clip, gt), cam in zip(clips, lifted, strict=True)
    ]


def score_clips(preds: list[np.ndarray], clips: list[ViewClip]) -> list[MotionScores]:
    """Each camera-frame prediction ``(T, 17, 3)`` against its clip's truth."""
    return [motion_scores(p, c.truth_cam) for p, c in zip(preds, clips, strict=True)]


@dataclass(frozen=True)
class ViewEvaluation:
    """One evaluated view: its people's truths, their quality, and the lifted clips."""

    view: str
    truths: list[Truth]
    quality: list[TruthQuality]
    clips: list[ViewClip]

    def scores(self, method: str, preds: list[np.ndarray]) -> list[PersonScore]:
        """One row per person: ``preds`` (camera frame, one per clip) against the truth."""
        per_clip = score_clips(preds, self.clips)
        rows = []
        for person in sorted({c.person for c in self.clips}):
            mine = [s for s, c in zip(per_clip, self.clips, strict=True) if c.person == person]
            rows.append(PersonScore(self.view, person, method, mean_scores(mine)))
        return rows


@dataclass(frozen=True)
class PersonScore:
    view: str
    person: int
    method: str  # lifter | videomdm
    scores: MotionScores

    def row(self) -> dict[str, object]:
        return {"view": self.view, "person": self.person, "method": self.method} | {
            k: round(v, 3) for k, v in self.scores.to_dict().items()
        }


def evaluate_view(
    scene: Scene,
    view: int,
    lifter: Lifter,
    calibrated: bool,
    clip_cfg: ClipConfig,
    cfg: MultiviewConfig = MultiviewConfig(),
) -> ViewEvaluation:
    """Every person the view and two others see: the truth from the others, the view's
    tracks cut into clips (through the calibration when ``calibrated``, else as an ordinary
    video through the default field of view) and lifted."""
    truths, quality, clips = [], [], []
    for person, seen in enumerate(scene.people):
        if not seen.tracks[view]:
            continue
        truth = truth_for_view(scene, person, view, cfg)
        if truth is None:
            continue
        camera = scene.views[view].camera if calibrated else None
        cut = cut_view_clips(scene, truth, camera, clip_cfg)
        if not cut:
            log.info("%s, person %d: no clip long enough", scene.views[view].name, person)
            continue
        truths.append(truth)
        quality.append(truth_quality(scene, truth, cfg))
        clips += lift_view(lifter, truth, cut)
    return ViewEvaluation(scene.views[view].name, truths, quality, clips)
