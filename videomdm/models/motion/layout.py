"""The layout of the per-frame motion features (``features.joints_to_features``).

``F = 108`` channels per frame:

============  =====  ======================================================================
name          width  meaning (frame ``t``)
============  =====  ======================================================================
root_y          1    height of the root (hip midpoint) above the floor (world Y), m
root_vel        2    root planar displacement ``root[t] - root[t-1]`` (X, Z) expressed in
                     the heading frame of frame ``t``, m per frame; 0 at ``t = 0``
heading_vel     1    heading change ``theta[t] - theta[t-1]`` wrapped to (-pi, pi], rad
                     per frame; 0 at ``t = 0``
local_pos      51    joints minus root, rotated into the heading frame, (17, 3), m
local_vel      51    world joint displacement ``joints[t] - joints[t-1]`` rotated into the
                     heading frame of frame ``t``, (17, 3), m per frame; 0 at ``t = 0``
foot_contact    2    left / right ankle on the ground (1) or not (0)
============  =====  ======================================================================

Only numbers live here (no numpy arrays, no torch), so a config can name ``FEATURE_DIM``
without loading a model.
"""

from __future__ import annotations

from videomdm.models.motion.skeleton import NUM_JOINTS

_WIDTHS: tuple[tuple[str, int], ...] = (
    ("root_y", 1),
    ("root_vel", 2),
    ("heading_vel", 1),
    ("local_pos", NUM_JOINTS * 3),
    ("local_vel", NUM_JOINTS * 3),
    ("foot_contact", 2),
)


def _layout() -> dict[str, slice]:
    out, start = {}, 0
    for name, width in _WIDTHS:
        out[name] = slice(start, start + width)
        start += width
    return out


FEATURE_LAYOUT: dict[str, slice] = _layout()
FEATURE_DIM: int = FEATURE_LAYOUT["foot_contact"].stop  # 108
REDUNDANT = ("local_vel", "foot_contact")  # channels that features_to_joints ignores


def redundant_slice() -> slice:
    """Where the redundant channels sit in the feature vector (they are contiguous, last)."""
    return slice(FEATURE_LAYOUT[REDUNDANT[0]].start, FEATURE_LAYOUT[REDUNDANT[-1]].stop)
