"""Where the floor is: motions stand on y = 0 in every picture."""

from __future__ import annotations

import numpy as np


def floor_height(joints: np.ndarray, percentile: float = 5.0) -> float:
    """The floor under a motion ``(T, 17, 3)`` (world, Y up): a low percentile over frames of
    each frame's lowest joint, so a jump or one bad frame does not move it."""
    lowest = np.nanmin(np.asarray(joints, np.float64)[..., 1], axis=-1)  # (T,)
    return float(np.nanpercentile(lowest, percentile))


def ground(joints: np.ndarray) -> np.ndarray:
    """The motion shifted so that it stands on y = 0 (``floor_height``)."""
    out = np.array(joints, np.float64, copy=True)
    out[..., 1] -= floor_height(out)
    return out
