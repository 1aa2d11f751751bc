"""Video -> per-person-per-frame 2D keypoints: decode, detect, pose, track, clean up.

The stages overlap: a background thread decodes frames, the detector's worker threads letterbox
and run ONNX Runtime on up to ``sessions`` batches at once, and the calling thread runs the pose
backend and the tracker in frame order. Only small per-row arrays are kept for the whole video
(dropping short tracks needs every track's length); frames live only while in flight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from videomdm.models.perception.config import DETECTOR_WEIGHTS, PerceptionConfig
from videomdm.models.perception.detection import Detections, Detector, make_detector
from videomdm.models.perception.pose2d import (
    PoseEstimator,
    make_pose_estimator,
    resolve_vitpose_folder,
)
from videomdm.models.perception.tracking import (
    PersonTracker,
    backfill_track_starts,
    keep_long_tracks,
)
from videomdm.models.perception.video import FrameBatch, background, iter_frame_batches, probe_video
from videomdm.models.perception.weights import WeightsSource, file_sha256, resolve_weights

log = logging.getLogger(__name__)

FRAME_BYTES_IN_FLIGHT = 256 << 20  # cap on decoded frames held at once, whatever the resolution


@dataclass(frozen=True)
class PersonFrames:
    """Rows of (person track, frame), as numpy columns of equal length R."""

    frame: np.ndarray  # (R,) int64 frame index in the decoded video
    t: np.ndarray  # (R,) float64 seconds
    track_id: np.ndarray  # (R,) int64
    bbox: np.ndarray  # (R, 4) float32 x1, y1, x2, y2 pixels
    det_score: np.ndarray  # (R,) float32
    kp: np.ndarray  # (R, 17, 3) float32 x, y pixels, score

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, idx: np.ndarray | slice) -> PersonFrames:
        return PersonFrames(*(getattr(self, f.name)[idx] for f in dataclasses.fields(self)))

    @staticmethod
    def concat(parts: list[PersonFrames]) -> PersonFrames:
        if not parts:
            return PersonFrames(
                np.zeros(0, np.int64),
                np.zeros(0),
                np.zeros(0, np.int64),
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32),
                np.zeros((0, 17, 3), np.float32),
            )
        cols = [f.name for f in dataclasses.fields(PersonFrames)]
        return PersonFrames(*(np.concatenate([getattr(p, c) for p in parts]) for c in cols))


@dataclass
class StageTimes:
    """Seconds spent per stage (worker-thread time for decode and detection), and wall time."""

    seconds: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    wall_s: float = 0.0
    tracked_rows: int = 0  # person rows a track claimed, before short tracks are dropped

    def add(self, stage: str, dt: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + dt


def _settings(cfg: PerceptionConfig) -> dict[str, object]:
    """The settings that change results (not speed knobs)."""
    d = dataclasses.asdict(cfg)
    for speed_only in ("batch_size", "threads", "sessions", "rows_per_yield"):
        d.pop(speed_only)
    d["vitpose"] = {
        k: v for k, v in d["vitpose"].items() if k not in ("crops_per_forward", "threads")
    }
    if cfg.pose != "vitpose":
        d.pop("vitpose")
    return d


def extractor_id(cfg: PerceptionConfig, weights: WeightsSource | None = None) -> str:
    """Short name of the models (content hashes) and settings, e.g. ``yolo-pose-3f2a..-s1c0..``."""
    det_hash = file_sha256(resolve_weights(DETECTOR_WEIGHTS[cfg.detector], weights), n_hex=8)
    parts = [cfg.pose, cfg.detector if cfg.detector != cfg.pose else "", det_hash]
    if cfg.pose == "vitpose":
        folder = resolve_vitpose_folder(cfg.vitpose.model, weights)
        files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        parts.append(file_sha256(files[0], n_hex=8) if files else "nofile")
    blob = json.dumps(_settings(cfg), sort_keys=True, default=str).encode()
    parts.append("s" + hashlib.sha256(blob).hexdigest()[:8])
    return "-".join(p for p in parts if p)


def _build(cfg: PerceptionConfig, weights: WeightsSource | None) -> Detector:
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // cfg.sessions)
    opts: dict[str, object] = dict(
        conf=cfg.det_conf, device=cfg.device, sessions=cfg.sessions, threads=threads
    )
    if cfg.detector == "yolo-pose":
        opts.update(iou=cfg.nms_iou, imgsz=cfg.imgsz, scaleup=cfg.scaleup)
    return make_detector(cfg.detector, weights, **opts)


def _timed(gen: Iterator[FrameBatch], stats: StageTimes) -> Iterator[FrameBatch]:
    """Charge the time spent producing each batch (decoding) to the 'decode' stage."""
    try:
        while True:
            t = time.perf_counter()
            try:
                batch = next(gen)
            except StopIteration:
                return
            stats.add("decode", time.perf_counter() - t)
            yield batch
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()  # release the container now, not at garbage collection


def frame_budget(width: int, height: int, cfg: PerceptionConfig) -> tuple[int, int]:
    """(batch size, decode prefetch) so that frames in flight stay under the byte cap."""
    frame_bytes = width * height * 3
    prefetch = 2
    in_flight = prefetch + cfg.sessions + 2  # queued + being detected + being posed/tracked
    wanted = cfg.batch_size or (1 if cfg.device == "cpu" else 8)
    batch = max(1, min(wanted, FRAME_BYTES_IN_FLIGHT // (frame_bytes * in_flight)))
    return batch, prefetch


def _per_person(
    batch: FrameBatch,
    dets: list[Detections],
    pose: PoseEstimator,
    tracker: PersonTracker,
    stats: StageTimes,
) -> PersonFrames:
    """Pose + track one batch of frames -> rows (track id -1 where ByteTrack gave none yet)."""
    t0 = time.perf_counter()
    kps = pose.estimate(batch.frames, dets)
    t1 = time.perf_counter()
    ids = [
        tracker.update(d.boxes, d.scores, float(t)) for d, t in zip(dets, batch.times, strict=True)
    ]
    stats.add("pose", t1 - t0)
    stats.add("track", time.perf_counter() - t1)
    counts = [len(d) for d in dets]
    return PersonFrames(
        frame=np.repeat(batch.indices, counts),
        t=np.repeat(batch.times, counts),
        track_id=np.concatenate(ids).astype(np.int64),
        bbox=np.concatenate([d.boxes for d in dets]).reshape(-1, 4),
        det_score=np.concatenate([d.scores for d in dets]),
        kp=np.concatenate(kps).reshape(-1, 17, 3),
    )


def _detect_and_track(
    video_path: str | os.PathLike[str],
    cfg: PerceptionConfig,
    detector: Detector,
    pose: PoseEstimator,
    stats: StageTimes,
) -> list[PersonFrames]:
    """The streaming pass: frames are dropped as soon as their batch is posed and tracked."""
    info = probe_video(video_path, check_end=False)
    batch_size, prefetch = frame_budget(*info.upright_size, cfg)
    tracker = PersonTracker(cfg.tracker, frame_rate=info.fps)
    frames = iter_frame_batches(
        video_path,
        batch_size,
        cfg.stride,
        cfg.target_fps,
        threaded=False,
        max_frames=cfg.max_frames,
    )
    inflight: deque = deque()
    rows: list[PersonFrames] = []
    for batch in background(_timed(frames, stats), prefetch):
        inflight.append((batch, detector.submit(batch.frames)))
        if len(inflight) > cfg.sessions:  # keep every session busy, results in frame order
            b, fut = inflight.popleft()
            rows.append(_per_person(b, fut.result(), pose, tracker, stats))
            stats.frames += len(b)
    while inflight:
        b, fut = inflight.popleft()
        rows.append(_per_person(b, fut.result(), pose, tracker, stats))
        stats.frames += len(b)
    return rows


def run_perception(
    video_path: str | os.PathLike[str],
    cfg: PerceptionConfig = PerceptionConfig(),
    weights: WeightsSource | None = None,
    *,
    pose_estimator: PoseEstimator | None = None,
    stats: StageTimes | None = None,
) -> Iterator[PersonFrames]:
    """Yield the tracked people of a video as row batches, in frame order.

    Rows of tracks shorter than ``cfg.min_track_len`` and detections no track claimed are
    dropped. ``pose_estimator`` replaces the backend named in ``cfg`` (tests, benchmarks);
    ``stats`` collects time per stage.
    """
    stats = stats if stats is not None else StageTimes()
    wall = time.perf_counter()
    detector = _build(cfg, weights)
    if pose_estimator is None:
        pose_estimator = make_pose_estimator(cfg.pose, cfg.vitpose, weights)
    try:
        rows = PersonFrames.concat(
            _detect_and_track(video_path, cfg, detector, pose_estimator, stats)
        )
    finally:
        detector.close()
        for step, s in detector.timings.items():
            stats.add(f"detect.{step}", s)
    t = time.perf_counter()
    ids = backfill_track_starts(rows.frame, rows.track_id, rows.bbox)
    stats.tracked_rows = int((ids >= 0).sum())
    rows = dataclasses.replace(rows, track_id=ids).take(keep_long_tracks(ids, cfg.min_track_len))
    stats.add("track", time.perf_counter() - t)
    stats.wall_s = time.perf_counter() - wall
    log.info(
        "%s: %d frames, %d rows in %d tracks, %.1f frames/s",
        Path(video_path).name,
        stats.frames,
        len(rows),
        len(np.unique(rows.track_id)),
        stats.frames / max(stats.wall_s, 1e-9),
    )
    for i in range(0, len(rows), cfg.rows_per_yield):
        yield rows.take(slice(i, i + cfg.rows_per_yield))
