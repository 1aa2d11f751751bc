"""Row codecs: lake rows to numpy arrays and back, without a Python object per value.

Fixed-size vectors are list columns (Delta has no fixed-size list type): ``list_column`` reads
one as an ``(R, width)`` array and ``list_array`` writes one. ``to_pylist`` on a long video's
keypoints costs seconds; these stay in Arrow and numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from videomdm.models.motion.sample import MotionSample
from videomdm.storage.lake import utcnow

N_JOINTS = 17
NO_CAPTION = "a person moves"  # what an uncaptioned clip is conditioned on


def list_column(col: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    """A list column of equal-length rows as a float32 ``(R, width)`` array."""
    return pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, width)


def list_array(a: np.ndarray) -> pa.ListArray:
    """``(R, k)`` to a ``list<float32>`` column, without Python loops."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1]).cast(
        pa.list_(pa.float32())
    )


def flat(a: np.ndarray) -> list[float]:
    """Any array as one flat float32 list (a row's list value)."""
    return np.asarray(a, np.float32).reshape(-1).tolist()


# --- keypoints ----------------------------------------------------------------------------


class PeopleColumns(Protocol):
    """Rows of (person track, frame) as numpy columns of equal length R (``PersonFrames``):
    ``frame``, ``t`` (s), ``track_id``, ``bbox`` ``(R, 4)`` px, ``det_score``, ``kp``
    ``(R, 17, 3)`` x, y px and score."""

    @property
    def frame(self) -> np.ndarray: ...
    @property
    def t(self) -> np.ndarray: ...
    @property
    def track_id(self) -> np.ndarray: ...
    @property
    def bbox(self) -> np.ndarray: ...
    @property
    def det_score(self) -> np.ndarray: ...
    @property
    def kp(self) -> np.ndarray: ...


def keypoint_table(people: PeopleColumns, video_id: str, extractor: str) -> pa.Table:
    """``keypoints`` rows of one video's people."""
    n = len(people.frame)
    return pa.table(
        {
            "video_id": pa.array([video_id] * n, pa.string()),
            "extractor": pa.array([extractor] * n, pa.string()),
            "track_id": people.track_id.astype(np.int32),
            "frame": people.frame.astype(np.int32),
            "t": people.t.astype(np.float64),
            "bbox": list_array(people.bbox),
            "det_score": people.det_score.astype(np.float32),
            "kp_x": list_array(people.kp[:, :, 0]),
            "kp_y": list_array(people.kp[:, :, 1]),
            "kp_score": list_array(people.kp[:, :, 2]),
        }
    )


def keypoint_arrays(t: pa.Table) -> np.ndarray:
    """``kp_x``, ``kp_y``, ``kp_score`` columns of keypoints rows as ``(R, 17, 3)``."""
    cols = ("kp_x", "kp_y", "kp_score")
    return np.stack([list_column(t.column(c), N_JOINTS) for c in cols], -1)


# --- clips and motions --------------------------------------------------------------------


def clip_keypoints(row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A ``clips`` row's normalised keypoints ``(T, 17, 2)`` and confidences ``(T, 17)``."""
    n = row["n_frames"]
    u = np.asarray(row["u"], np.float32).reshape(n, N_JOINTS, 2)
    return u, np.asarray(row["conf"], np.float32).reshape(n, N_JOINTS)


def motion_camera(row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``motions`` row's world joints ``(T, 17, 3)`` and camera ``R`` ``(3, 3)``, ``t``."""
    joints = np.asarray(row["joints"], np.float32).reshape(row["n_frames"], N_JOINTS, 3)
    R = np.asarray(row["cam_R"], np.float64).reshape(3, 3)  # noqa: N806
    return joints, R, np.asarray(row["cam_t"], np.float64)


def motion_sample(row: Mapping[str, Any]) -> MotionSample:
    """A ``motions`` row joined with its clip's ``u``, ``conf`` and ``text``."""
    joints, R, t = motion_camera(row)  # noqa: N806
    u, conf = clip_keypoints(row)
    return MotionSample(
        joints, u, conf, R, t, row["text"] or NO_CAPTION, float(row["fps"]), row["clip_id"]
    )


def motion_row(
    clip: Mapping[str, Any],
    lifter_id: str,
    joints: np.ndarray,
    R: np.ndarray,  # noqa: N803
    t: np.ndarray,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The ``motions`` row of ``joints`` ``(T, 17, 3)`` (world) seen by ``R, t``, for the clip
    row ``clip`` (its id, video, fps and intrinsics)."""
    return {
        "clip_id": clip["clip_id"],
        "lifter_id": lifter_id,
        "video_id": clip["video_id"],
        "n_frames": len(joints),
        "fps": clip["fps"],
        "joints": flat(joints),
        "cam_R": flat(R),
        "cam_t": flat(t),
        "intrinsics": list(clip["intrinsics"]),
        "created_at": created_at or utcnow(),
    }
