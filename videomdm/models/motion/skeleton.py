"""The canonical skeleton: the 17 COCO keypoints, in metres, world frame Y up.

Every 3D motion in the project is a ``(T, 17, 3)`` array in this joint order, and every 2D
keypoint set a ``(T, 17, 2)`` array in the same order, so that a detector's output and a
projected motion can be compared joint by joint.

The COCO set has no pelvis joint; the kinematic root is the virtual hip midpoint (``root``).
``PARENTS`` is a tree over the 17 real joints that exists for bone lengths and drawing
order: hips and shoulders are chained (left hip -> right hip, left hip -> left shoulder ->
right shoulder), limbs hang off them, and the face hangs off the nose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Parent of each joint (-1 for the tree root, the left hip). The nose hangs off the left
# shoulder only so the tree is connected: that bone is not rigid (the neck bends), so it is
# excluded from RIGID_BONES.
PARENTS: tuple[int, ...] = (
    5,  # nose <- left_shoulder
    0,  # left_eye <- nose
    0,  # right_eye <- nose
    1,  # left_ear <- left_eye
    2,  # right_ear <- right_eye
    11,  # left_shoulder <- left_hip
    5,  # right_shoulder <- left_shoulder
    5,  # left_elbow <- left_shoulder
    6,  # right_elbow <- right_shoulder
    7,  # left_wrist <- left_elbow
    8,  # right_wrist <- right_elbow
    -1,  # left_hip (tree root)
    11,  # right_hip <- left_hip
    11,  # left_knee <- left_hip
    12,  # right_knee <- right_hip
    13,  # left_ankle <- left_knee
    14,  # right_ankle <- right_knee
)

# (child, parent) for every joint but the tree root, in joint order: bone_lengths() order.
BONES: tuple[tuple[int, int], ...] = tuple((j, p) for j, p in enumerate(PARENTS) if p >= 0)

# Bones whose length a real body keeps constant (limbs, pelvis, shoulder girdle, face).
RIGID_BONES: tuple[tuple[int, int], ...] = tuple(b for b in BONES if b != (0, 5))

# Segments to draw (COCO's skeleton, 0-based), each a (joint, joint) pair.
LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (5, 6),
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 11),
    (6, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
)

# flip_lr permutation: the index of each joint's mirror partner.
FLIP_PERM: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

LEFT_JOINTS: tuple[int, ...] = tuple(i for i, n in enumerate(JOINT_NAMES) if n.startswith("left"))
RIGHT_JOINTS: tuple[int, ...] = tuple(FLIP_PERM[i] for i in LEFT_JOINTS)

Array = Any  # np.ndarray or torch.Tensor


def flip_lr(joints: Array, axis: int = 0, center: float = 0.0) -> Array:
    """Mirror a pose: swap left/right joints and reflect coordinate ``axis`` about ``center``.

    Works on numpy arrays and torch tensors of shape ``(..., 17, D)``. For world motions
    (Y up) the default reflects X; for pixels pass ``center=width / 2`` (the mirror of
    pixel x is ``width - x``).
    """
    out = joints[..., list(FLIP_PERM), :]  # (..., 17, D), a copy: fancy indexing
    out[..., axis] = 2.0 * center - out[..., axis]
    return out


def bone_lengths(joints: np.ndarray, bones: tuple[tuple[int, int], ...] = BONES) -> np.ndarray:
    """Lengths of ``bones`` (default: every tree bone, in ``BONES`` order). ``(..., 17, 3)`` in,
    ``(..., len(bones))`` out."""
    joints = np.asarray(joints)
    child = [c for c, _ in bones]
    parent = [p for _, p in bones]
    return np.linalg.norm(joints[..., child, :] - joints[..., parent, :], axis=-1)


# Median rigid bone lengths (m) over all shared mocap clips, in RIGID_BONES order: the
# population's body size (the bone-length baseline, and the body-size gauge below).
MEAN_BONE_LENGTHS = np.array(
    [
        0.057,
        0.057,
        0.097,
        0.097,
        0.404,
        0.206,
        0.243,
        0.243,
        0.223,
        0.223,
        0.129,
        0.391,
        0.391,
        0.410,
        0.410,
    ]
)
# A body more than this factor off the population's is a broken motion, not a small person.
MAX_SIZE_FACTOR = 4.0


def body_size_factor(joints: np.ndarray) -> float:
    """The factor that brings a motion ``(T, 17, 3)`` to the population's body size: the median
    over rigid bones of ``MEAN_BONE_LENGTHS / (the bone's median length over frames)``,
    clipped to ``[1 / MAX_SIZE_FACTOR, MAX_SIZE_FACTOR]``; 1 for a motion with no finite bone.

    Size is invisible in one view (a bigger body farther away projects the same), so a motion
    lifted from 2D has its size only from the lifter. Scaling its joints *and* its camera
    translation by this factor leaves its projection unchanged: a choice of gauge that uses a
    population average, not a measurement of the person.
    """
    joints = np.asarray(joints, np.float64)
    finite = np.isfinite(joints).all(axis=(-1, -2))
    if not finite.any():
        return 1.0
    lengths = np.median(bone_lengths(joints[finite], RIGID_BONES), axis=0)
    ok = lengths > 0
    if not ok.any():
        return 1.0
    ratio = np.median(MEAN_BONE_LENGTHS[ok] / lengths[ok])
    return float(np.clip(ratio, 1 / MAX_SIZE_FACTOR, MAX_SIZE_FACTOR))


def root(joints: Array) -> Array:
    """The hip midpoint, the virtual root: ``(..., 17, D)`` in, ``(..., D)`` out."""
    return 0.5 * (
        joints[..., JOINT_INDEX["left_hip"], :] + joints[..., JOINT_INDEX["right_hip"], :]
    )


def facing(joints: np.ndarray, up: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> np.ndarray:
    """Horizontal unit forward direction of the body, from hips and shoulders.

    With the body's left vector ``l`` (right joints to left joints) and ``up``, forward is
    ``l x up`` in a right-handed frame. ``(..., 17, 3)`` in, ``(..., 3)`` out.
    """
    joints = np.asarray(joints, dtype=np.float64)
    li = [JOINT_INDEX["left_hip"], JOINT_INDEX["left_shoulder"]]
    ri = [JOINT_INDEX["right_hip"], JOINT_INDEX["right_shoulder"]]
    left = (joints[..., li, :] - joints[..., ri, :]).sum(axis=-2)  # (..., 3)
    up_v = np.asarray(up, dtype=np.float64)
    fwd = np.cross(left, up_v)
    fwd -= (fwd @ up_v)[..., None] * up_v
    return fwd / np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9)
