"""Multi-person tracking with ByteTrack (``trackers.ByteTrackTracker``) and track clean-up.

ByteTrack gives a track id only once a track has been matched ``minimum_consecutive_frames``
times, so the detection that started a track comes back with id -1; :func:`backfill_track_starts`
gives it its id afterwards. Short tracks (false positives, passers-by) are dropped after the whole
video is seen, from small per-row arrays only.
"""

from __future__ import annotations

import logging

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from videomdm.models.perception.config import TrackerConfig
from videomdm.models.perception.detection import box_iou

log = logging.getLogger(__name__)


class PersonTracker:
    """Online ByteTrack over the frames of one video, in order."""

    def __init__(self, cfg: TrackerConfig = TrackerConfig(), frame_rate: float = 30.0) -> None:
        self.cfg = cfg
        self._tracker = ByteTrackTracker(
            lost_track_buffer=cfg.lost_track_buffer,
            frame_rate=frame_rate,
            track_activation_threshold=cfg.track_activation_threshold,
            minimum_consecutive_frames=cfg.minimum_consecutive_frames,
            minimum_iou_threshold=cfg.minimum_iou_threshold,
            high_conf_det_threshold=cfg.high_conf_det_threshold,
        )

    def update(self, boxes: np.ndarray, scores: np.ndarray, t: float | None = None) -> np.ndarray:
        """Boxes (N, 4) xyxy and scores (N,) of one frame -> track ids (N,) int64, -1 untracked.

        ``t`` (seconds) lets the Kalman filter step by real time when frames are skipped.
        """
        n = len(scores)
        dets = sv.Detections(
            xyxy=np.asarray(boxes, np.float32).reshape(n, 4),
            confidence=np.asarray(scores, np.float32),
            data={"row": np.arange(n)},
        )
        out = self._tracker.update(dets, timestamp=t)
        ids = np.full(n, -1, np.int64)
        if len(out):
            ids[np.asarray(out.data["row"], np.int64)] = np.asarray(out.tracker_id, np.int64)
        return ids

    def reset(self) -> None:
        self._tracker.reset()


def backfill_track_starts(
    frames: np.ndarray, track_ids: np.ndarray, boxes: np.ndarray, iou_thr: float = 0.3
) -> np.ndarray:
    """Give each track's starting detection (id -1 in the previous processed frame) its id.

    frames (R,), track_ids (R,), boxes (R, 4) per row -> new track_ids (R,). A track's first
    tracked row at frame f adopts the untracked row at the previous processed frame that
    overlaps it most, if the IoU exceeds ``iou_thr``. With ``minimum_consecutive_frames`` above
    2 only the last of the untracked warm-up rows is recovered.
    """
    ids = track_ids.copy()
    processed = np.unique(frames)
    untracked = np.nonzero(ids < 0)[0]
    by_frame: dict[int, list[int]] = {}
    for r in untracked:
        by_frame.setdefault(int(frames[r]), []).append(int(r))
    tracked = np.nonzero(ids >= 0)[0]
    _, first = np.unique(ids[tracked], return_index=True)
    for r0 in tracked[first]:
        pos = np.searchsorted(processed, frames[r0])
        if pos == 0:
            continue
        cands = [r for r in by_frame.get(int(processed[pos - 1]), []) if ids[r] < 0]
        if not cands:
            continue
        iou = box_iou(boxes[r0 : r0 + 1], boxes[cands])[0]
        best = int(np.argmax(iou))
        if iou[best] > iou_thr:
            ids[cands[best]] = ids[r0]
    return ids


def track_lengths(track_ids: np.ndarray) -> dict[int, int]:
    """Rows per track id (ignoring -1)."""
    ids, counts = np.unique(track_ids[track_ids >= 0], return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts, strict=True)}


def keep_long_tracks(track_ids: np.ndarray, min_len: int) -> np.ndarray:
    """Mask (R,) of rows whose track has at least ``min_len`` rows; untracked rows are dropped."""
    valid = track_ids >= 0
    if not valid.any():
        return valid
    ids, inverse, counts = np.unique(track_ids[valid], return_inverse=True, return_counts=True)
    keep = np.zeros(len(track_ids), bool)
    keep[valid] = counts[inverse] >= min_len
    log.debug(
        "keeping %d of %d tracks (min length %d)", int((counts >= min_len).sum()), len(ids), min_len
    )
    return keep
