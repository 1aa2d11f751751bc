"""The multi-view yardstick: monocular 3D of one view scored against the people triangulated
from the other calibrated views.

1. ``build_scene``: tracks matched across views (``multiview.associate``) and each view's
   frame offset (``multiview.find_offsets``).
2. ``truth_for_view``: each person seen by the evaluated view and by at least two others is
   triangulated from those others only (the evaluated view's own keypoints never enter its
   truth) at the evaluated view's frame times, in its camera frame.
3. ``truth_quality``: how good that truth is: its reprojection error in the views it came
   from, the error of its projection into the evaluated view against that view's detections
   (the real detector's error, up to the truth's own), how stable its bone lengths are, and
   how far it moves when another view is left out instead (a floor under any score).
Scoring a prediction against the truth is ``pose_scores.motion_scores``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.signal

from videomdm.errors import UserError
from videomdm.models.evaluation.pose_scores import motion_scores
from videomdm.models.motion.multiview import (
    AssociationConfig,
    Person,
    SyncConfig,
    ViewTracks,
    associate,
    at_times,
    find_offsets,
    person_keypoints,
)
from videomdm.models.motion.skeleton import RIGID_BONES, bone_lengths
from videomdm.models.motion.triangulation import (
    TriangulationConfig,
    fix_swaps,
    sample_at,
    triangulate,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MultiviewConfig:
    association: AssociationConfig = field(default_factory=AssociationConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)
    min_truth_views: int = 2  # views besides the evaluated one that must see a person
    fix_swaps: bool = True  # undo the detector's left/right confusions (``fix_swaps``)
    # zero-phase Butterworth low-pass of the truth (Pose2Sim filters its output alike); None:
    # raw triangulation
    cutoff_hz: float | None = 6.0


@dataclass(frozen=True)
class Scene:
    """Calibrated views of one recording, their people and frame offsets."""

    views: tuple[ViewTracks, ...]
    people: tuple[Person, ...]
    offsets: np.ndarray  # (V,) frame f of view v shows reference time f - offsets[v]
    keypoints: tuple[tuple[np.ndarray, ...], ...]  # per person, per view: (F_v, 17, 3)
    # (person, view, config) -> Truth: each view's evaluation and every other view's
    # consistency check ask for the same truths (``truth_for_view``), triangulated once
    truths: dict[tuple[int, int, MultiviewConfig], Truth | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def view_index(self, name: str) -> int:
        return view_index([v.name for v in self.views], name)


def view_index(names: Sequence[str], name: str) -> int:
    """The index of view ``name`` among ``names``; one error naming the views otherwise."""
    if name not in names:
        raise UserError(f"no view {name!r}; the views are {list(names)}")
    return list(names).index(name)


def build_scene(views: Sequence[ViewTracks], cfg: MultiviewConfig = MultiviewConfig()) -> Scene:
    """Match the views' tracks into people, then find each view's frame offset."""
    if len(views) < 3:
        raise UserError(f"the yardstick needs at least 3 calibrated views, got {len(views)}")
    people = associate(views, cfg.association)
    if not people:
        raise UserError("no person is seen in two views: check the calibration's camera names")
    kps = tuple(tuple(person_keypoints(views, p)) for p in people)
    offsets = find_offsets([v.camera for v in views], kps, cfg.sync, cfg.triangulation)
    log.info("%d people over %d views, offsets %s", len(people), len(views), offsets.tolist())
    return Scene(tuple(views), tuple(people), offsets, kps)


@dataclass(frozen=True)
class Truth:
    """One person triangulated at the evaluated view's frame times from the other views."""

    person: int
    view: int  # the evaluated view
    source_views: tuple[int, ...]  # the views it was triangulated from
    joints_world: np.ndarray  # (F, 17, 3) metres, calibration world; NaN where unknown
    joints_cam: np.ndarray  # (F, 17, 3) the evaluated view's camera frame
    reprojection_px: np.ndarray  # (V_source, F, 17) error in the source views (NaN unused)
    views_used: np.ndarray  # (F, 17)


def truth_for_view(
    scene: Scene, person: int, view: int, cfg: MultiviewConfig = MultiviewConfig()
) -> Truth | None:
    """``person`` triangulated from every other view that sees it, at ``view``'s frames; None
    when fewer than ``cfg.min_truth_views`` other views see it. Kept in ``scene.truths``."""
    key = (person, view, cfg)
    if key not in scene.truths:
        scene.truths[key] = _triangulate_truth(scene, person, view, cfg)
    return scene.truths[key]


def _triangulate_truth(scene: Scene, person: int, view: int, cfg: MultiviewConfig) -> Truth | None:
    sources = tuple(v for v in scene.people[person].views() if v != view)
    if len(sources) < cfg.min_truth_views:
        return None
    kps = scene.keypoints[person]
    times = np.arange(scene.views[view].n_frames) - scene.offsets[view]
    kp = at_times([kps[v] for v in sources], scene.offsets[list(sources)], times)
    cams = [scene.views[v].camera for v in sources]
    if cfg.fix_swaps:
        kp, swapped = fix_swaps(cams, kp, cfg.triangulation)
        log.debug("person %d, view %d: %d view-frames unswapped", person, view, swapped.sum())
    X, err, used = triangulate(cams, kp, cfg.triangulation)  # noqa: N806
    if cfg.cutoff_hz is not None:
        X = lowpass(X, scene.views[view].fps, cfg.cutoff_hz)  # noqa: N806
    R, t = scene.views[view].camera.pose()  # noqa: N806
    return Truth(person, view, sources, X, X @ R.T + t, err, used)


def lowpass(x: np.ndarray, fps: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass of a motion ``(F, ...)`` along time, over each run of
    finite frames long enough for the filter (shorter runs and NaN are left as they are)."""
    b, a = scipy.signal.butter(order, min(cutoff_hz / (0.5 * fps), 0.99))
    pad = 3 * max(len(a), len(b))
    out = np.array(x, dtype=np.float64)
    flat = out.reshape(len(out), -1)
    for c in range(flat.shape[1]):
        finite = np.isfinite(flat[:, c])
        edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(int), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start > pad:
                flat[start:stop, c] = scipy.signal.filtfilt(b, a, flat[start:stop, c])
    return flat.reshape(out.shape)


@dataclass(frozen=True)
class TruthQuality:
    """How trustworthy one person's truth is (pixels at each view's resolution)."""

    person: int
    view: str
    source_views: tuple[str, ...]
    known_joints: float  # share of (frame, joint) triangulated
    reprojection_px: float  # median error in the views it came from
    heldout_px: float  # median error of its projection against the evaluated view's keypoints
    heldout_mean_px: float
    bone_std_mm: float  # median over rigid bones of the std of the bone's length over frames
    bone_cv: float  # the same as a share of the bone's median length
    # PA-MPJPE (mm) against the same person triangulated without another view instead
    # (``truth_consistency``): the truth's own error is at least about this / sqrt(2)
    consistency_pa_mm: float

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def heldout_residuals(scene: Scene, truth: Truth, min_score: float = 0.3) -> np.ndarray:
    """The evaluated view's detected keypoints minus the truth projected into it (undistorted
    pixels): ``(F, 17, 2)``, NaN where either is missing or the score is below ``min_score``."""
    cam = scene.views[truth.view].camera
    det = scene.keypoints[truth.person][truth.view]  # (F, 17, 3)
    proj, z = cam.project(truth.joints_world)
    res = det[..., :2] - proj
    ok = (det[..., 2] >= min_score) & (z > 0) & np.isfinite(res).all(-1)
    return np.where(ok[..., None], res, np.nan)


def truth_consistency(
    scene: Scene, truth: Truth, cfg: MultiviewConfig = MultiviewConfig()
) -> float:
    """Mean PA-MPJPE (mm) between ``truth`` and the person's truths that leave out another
    view instead, at the evaluated view's frame times; NaN when there is none. Two such truths
    share all their views but one each, so their errors are correlated and they differ less
    than independent truths would: each truth's own error is at least about this / sqrt(2),
    and no monocular method can be measured below that."""
    times = np.arange(scene.views[truth.view].n_frames) - scene.offsets[truth.view]
    errs = []
    for w in scene.people[truth.person].views():
        other = None if w == truth.view else truth_for_view(scene, truth.person, w, cfg)
        if other is None:
            continue
        # frame k of the other truth is reference time k - offsets[w]
        score = motion_scores(
            sample_at(other.joints_world, times + scene.offsets[w]), truth.joints_world
        )
        if score.frames:
            errs.append(score.pa_mpjpe_mm)
    return float(np.mean(errs)) if errs else float("nan")


def truth_quality(
    scene: Scene, truth: Truth, cfg: MultiviewConfig = MultiviewConfig()
) -> TruthQuality:
    """Reprojection errors, bone-length stability and consistency of one truth."""
    held = np.linalg.norm(heldout_residuals(scene, truth), axis=-1)
    lengths = bone_lengths(truth.joints_world, RIGID_BONES)  # (F, B)
    with warnings.catch_warnings():  # a bone never triangulated (a hidden face) is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(lengths, axis=0)
        med = np.nanmedian(lengths, axis=0)
    names = [v.name for v in scene.views]
    return TruthQuality(
        person=truth.person,
        view=names[truth.view],
        source_views=tuple(names[v] for v in truth.source_views),
        known_joints=float(np.isfinite(truth.joints_world[..., 0]).mean()),
        reprojection_px=float(np.nanmedian(truth.reprojection_px)),
        heldout_px=float(np.nanmedian(held)),
        heldout_mean_px=float(np.nanmean(held)),
        bone_std_mm=1000.0 * float(np.nanmedian(std)),
        bone_cv=float(np.nanmedian(std / med)),
        consistency_pa_mm=truth_consistency(scene, truth, cfg),
    )
