"""One scene filmed by several calibrated cameras: each view's person tracks matched across
views, each view's frame offset, and the people triangulated at any view's frame times.

A view's tracks come from the video pipeline (``keypoints`` rows: pixels and scores per
track and frame), so track ids differ between views and a person may be split over several
tracks. ``associate`` clusters tracks whose keypoints agree with the epipolar geometry;
``find_offsets`` then finds, per view, the frame offset (views are seldom frame-aligned) that
minimises the triangulation's reprojection error.

Time: frame ``f`` of view ``v`` shows the scene at reference time ``f - offsets[v]`` (in
frames of the reference view, the first, whose offset is 0); offsets may be fractional, and
keypoints between frames are interpolated (``triangulation.sample_at``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from videomdm.models.motion.calibration import CameraModel
from videomdm.models.motion.skeleton import NUM_JOINTS
from videomdm.models.motion.triangulation import (
    TriangulationConfig,
    epipolar_distance,
    sample_at,
    triangulate,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewTracks:
    """One view's person tracks, dense over its frames."""

    name: str
    camera: CameraModel
    fps: float
    track_ids: tuple[int, ...]
    kp: np.ndarray  # (n_tracks, F, 17, 3) pixels and score; NaN where the track is absent

    @classmethod
    def from_rows(
        cls,
        name: str,
        camera: CameraModel,
        fps: float,
        n_frames: int,
        track_ids: np.ndarray,
        frames: np.ndarray,
        kp: np.ndarray,
    ) -> ViewTracks:
        """From keypoints rows: ``track_ids`` and ``frames`` ``(R,)``, ``kp`` ``(R, 17, 3)``."""
        ids = tuple(int(i) for i in np.unique(track_ids))
        frames = np.asarray(frames, dtype=np.int64)
        n = max(n_frames, int(frames.max()) + 1 if len(frames) else 0)
        dense = np.full((len(ids), n, NUM_JOINTS, 3), np.nan)
        row = np.searchsorted(np.asarray(ids), track_ids)
        dense[row, frames] = kp
        return cls(name, camera, fps, ids, dense)

    @property
    def n_frames(self) -> int:
        return self.kp.shape[1]


@dataclass(frozen=True)
class AssociationConfig:
    max_epipolar_px: float = 60.0  # tracks farther apart than this are not one person
    min_score: float = 0.3  # keypoints used in the distance
    min_frames: int = 5  # frames two tracks must share to be compared


@dataclass(frozen=True)
class Person:
    """One person's tracks: for each view, the ids of its tracks there (empty: unseen)."""

    tracks: tuple[tuple[int, ...], ...]

    def views(self) -> list[int]:
        return [v for v, t in enumerate(self.tracks) if t]


def track_distance(a: ViewTracks, ia: int, b: ViewTracks, ib: int, cfg: AssociationConfig) -> float:
    """Median over shared frames of the mean symmetric epipolar distance (px) between two
    tracks' confident keypoints; inf when they share fewer than ``cfg.min_frames`` frames."""
    n = min(a.n_frames, b.n_frames)
    ka, kb = a.kp[ia, :n], b.kp[ib, :n]
    ok = (ka[..., 2] >= cfg.min_score) & (kb[..., 2] >= cfg.min_score)  # (F, 17)
    d = epipolar_distance(a.camera, b.camera, ka[..., :2], kb[..., :2])
    n_ok = ok.sum(1)
    per_frame = np.where(ok, np.nan_to_num(d), 0.0).sum(1) / np.maximum(n_ok, 1)
    per_frame = per_frame[n_ok >= 3]
    return float(np.median(per_frame)) if len(per_frame) >= cfg.min_frames else float("inf")


def associate(views: Sequence[ViewTracks], cfg: AssociationConfig = AssociationConfig()):
    """People seen in at least two views: tracks clustered greedily, closest pair first, two
    clusters merging when every pair of their tracks in different views is within
    ``cfg.max_epipolar_px`` on average and no view would hold two tracks at the same time."""
    nodes = [(v, i) for v, view in enumerate(views) for i in range(len(view.track_ids))]
    dist: dict[tuple[int, int], float] = {}
    for (x, (va, ia)), (y, (vb, ib)) in itertools.combinations(enumerate(nodes), 2):
        if va != vb:
            dist[x, y] = dist[y, x] = track_distance(views[va], ia, views[vb], ib, cfg)
    cluster = {x: {x} for x in range(len(nodes))}
    for (x, y), d in sorted(dist.items(), key=lambda kv: kv[1]):
        cx, cy = cluster[x], cluster[y]
        if cx is cy or d > cfg.max_epipolar_px:
            continue
        cross = [dist[p, q] for p in cx for q in cy if (p, q) in dist]
        finite = [c for c in cross if np.isfinite(c)]
        if not finite or np.mean(finite) > cfg.max_epipolar_px:
            continue
        if _overlap(views, [nodes[p] for p in cx], [nodes[q] for q in cy]):
            continue
        merged = cx | cy
        for p in merged:
            cluster[p] = merged
    people = []
    for c in {id(c): c for c in cluster.values()}.values():
        per_view: list[list[int]] = [[] for _ in views]
        for p in sorted(c):
            v, i = nodes[p]
            per_view[v].append(views[v].track_ids[i])
        if sum(bool(t) for t in per_view) >= 2:
            people.append(Person(tuple(tuple(t) for t in per_view)))
    return sorted(people, key=lambda p: [t[0] if t else 1 << 30 for t in p.tracks])


def _overlap(views: Sequence[ViewTracks], a: list[tuple[int, int]], b: list[tuple[int, int]]):
    """Whether a view has a track in ``a`` and one in ``b`` present in a common frame."""
    for (va, ia), (vb, ib) in itertools.product(a, b):
        if va == vb:
            both = np.isfinite(views[va].kp[ia, :, :, 0]).any(-1) & np.isfinite(
                views[vb].kp[ib, :, :, 0]
            ).any(-1)
            if both.any():
                return True
    return False


def person_keypoints(views: Sequence[ViewTracks], person: Person) -> list[np.ndarray]:
    """Per view, the person's keypoints ``(F_v, 17, 3)`` (its tracks merged; NaN unseen)."""
    out = []
    for view, ids in zip(views, person.tracks, strict=True):
        kp = np.full(view.kp.shape[1:], np.nan)
        for tid in ids:
            track = view.kp[view.track_ids.index(tid)]
            seen = np.isfinite(track[..., 0]).any(-1)
            kp[seen] = track[seen]
        out.append(kp)
    return out


def at_times(kps: Sequence[np.ndarray], offsets: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Each view's keypoints at reference ``times`` ``(N,)``: ``(V, N, 17, 3)``."""
    return np.stack([sample_at(kp, times + off) for kp, off in zip(kps, offsets, strict=True)])


def reprojection_cost(
    cameras: Sequence[CameraModel],
    people: Sequence[Sequence[np.ndarray]],
    offsets: np.ndarray,
    views: Sequence[int],
    cfg: TriangulationConfig,
) -> float:
    """Median reprojection error (px) of ``people`` (each: per-view keypoints) triangulated
    from ``views`` at every frame of the first of them, no view dropped."""
    keep = TriangulationConfig(cfg.min_score, float("inf"), cfg.min_views)
    errs = []
    for kps in people:
        times = np.arange(len(kps[views[0]])) - offsets[views[0]]
        kp = at_times([kps[v] for v in views], offsets[list(views)], times)
        _, err, _ = triangulate([cameras[v] for v in views], kp, keep)
        errs.append(err[np.isfinite(err)])
    pooled = np.concatenate(errs) if errs else np.array([])
    return float(np.median(pooled)) if len(pooled) else float("inf")


@dataclass(frozen=True)
class SyncConfig:
    max_offset: int = 10  # frames searched either side of the reference
    # resolution of the all-view refinement. Fractional steps interpolate keypoints between
    # frames, which averages away detector noise and so favours half-frame offsets: whole
    # frames unless the views are known to be out of phase
    step: float = 1.0


def find_offsets(
    cameras: Sequence[CameraModel],
    people: Sequence[Sequence[np.ndarray]],
    cfg: SyncConfig = SyncConfig(),
    tri: TriangulationConfig = TriangulationConfig(),
) -> np.ndarray:
    """Each view's frame offset ``(V,)`` against the first view (0): first every whole
    offset of the view paired with the reference, then, with all views, each offset in turn
    moved by up to one frame in ``cfg.step`` steps (coordinate descent, twice over the
    views)."""
    n = len(cameras)
    offsets = np.zeros(n)
    for v in range(1, n):
        costs = []
        for o in range(-cfg.max_offset, cfg.max_offset + 1):
            trial = offsets.copy()
            trial[v] = o
            costs.append(reprojection_cost(cameras, people, trial, [0, v], tri))
        offsets[v] = int(np.argmin(costs)) - cfg.max_offset
        log.info("view %d: offset %+d frames (pair cost %.1f px)", v, offsets[v], min(costs))
    views = list(range(n))
    grid = np.arange(-1.0, 1.0 + 1e-9, cfg.step)
    for _ in range(2):
        for v in range(1, n):
            costs = []
            for d in grid:
                trial = offsets.copy()
                trial[v] += d
                costs.append(reprojection_cost(cameras, people, trial, views, tri))
            offsets[v] += grid[int(np.argmin(costs))]
    log.info("offsets %s, all-view cost %.1f px", offsets.tolist(), min(costs))
    return offsets
