"""A small BVH reader with forward kinematics vectorised over frames.

Why not ``bvhio`` (the maintained BVH library): it is correct (tests/test_motion_data.py
checks this FK against it) but it builds a PyGLM object per joint per frame and poses the
hierarchy one frame at a time. On the project's mocap (~60k frames, up to 100 joints) that
is minutes on a 2-core CPU; parsing the numbers with numpy and composing rotations for all
frames at once is ~1-2 s for everything.

Conventions (the usual BVH ones, also bvhio's): a joint's ``CHANNELS`` rotations compose in
the listed order as matrices, ``R = R_c1 @ R_c2 @ R_c3`` (angles in degrees); a joint with
position channels uses them as its translation instead of its ``OFFSET``; end sites become
extra joints named ``<parent>_End`` with no channels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_AXES = {"X": 0, "Y": 1, "Z": 2}


@dataclass(frozen=True)
class BvhSkeleton:
    names: tuple[str, ...]
    parents: tuple[int, ...]  # -1 for the root; parents come before children
    offsets: np.ndarray  # (J, 3) in file units
    channels: tuple[tuple[str, ...], ...]  # per joint, e.g. ("Zrotation", "Xrotation", ...)
    channel_start: tuple[int, ...]  # per joint, its first column in the motion block

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"joint {name!r} not in BVH skeleton; joints: {self.names}") from None


@dataclass(frozen=True)
class BvhMotion:
    skeleton: BvhSkeleton
    frame_time: float  # seconds
    motion: np.ndarray  # (F, C) channel values

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


def _parse_hierarchy(tokens: list[str]) -> BvhSkeleton:
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    stack: list[int] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("ROOT", "JOINT") or tok == "End":
            parent = stack[-1] if stack else -1
            if tok == "End":
                if parent < 0:
                    raise ValueError("End Site outside a joint")
                names.append(f"{names[parent]}_End")
            else:
                names.append(tokens[i + 1])
            parents.append(parent)
            offsets.append([0.0, 0.0, 0.0])
            channels.append(())
            if tokens[i + 2] != "{":
                raise ValueError(f"expected '{{' after {tok} {tokens[i + 1]}")
            stack.append(len(names) - 1)
            i += 3
        elif tok == "OFFSET":
            offsets[stack[-1]] = [float(v) for v in tokens[i + 1 : i + 4]]
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            channels[stack[-1]] = tuple(tokens[i + 2 : i + 2 + n])
            i += 2 + n
        elif tok == "}":
            stack.pop()
            i += 1
        elif tok == "HIERARCHY":
            i += 1
        else:
            raise ValueError(f"unexpected token {tok!r} in BVH hierarchy")
    if stack or not names:
        raise ValueError("unbalanced or empty BVH hierarchy")
    starts = np.concatenate([[0], np.cumsum([len(c) for c in channels])[:-1]]).astype(int)
    return BvhSkeleton(
        tuple(names),
        tuple(parents),
        np.asarray(offsets, np.float64),
        tuple(channels),
        tuple(int(s) for s in starts),
    )


def parse_bvh(text: str) -> BvhMotion:
    """Parse BVH text; raises ``ValueError`` on a malformed file."""
    head, sep, body = text.partition("MOTION")
    if not sep:
        raise ValueError("no MOTION section")
    skeleton = _parse_hierarchy(head.split())
    lines = body.lstrip().split("\n", 2)
    if len(lines) < 3 or not lines[0].startswith("Frames:") or "Frame Time:" not in lines[1]:
        raise ValueError("MOTION section lacks 'Frames:' / 'Frame Time:' lines")
    n_frames = int(lines[0].split(":")[1])
    frame_time = float(lines[1].split(":")[1])
    if frame_time <= 0:
        raise ValueError(f"non-positive frame time {frame_time}")
    n_ch = sum(len(c) for c in skeleton.channels)
    values = np.array(lines[2].split(), dtype=np.float64)
    n_full = len(values) // n_ch
    if n_full == 0:
        raise ValueError("no complete frame of motion data")
    if n_full != n_frames or len(values) % n_ch:
        log.warning("BVH header says %d frames, data has %d complete", n_frames, n_full)
    return BvhMotion(skeleton, frame_time, values[: n_full * n_ch].reshape(n_full, n_ch))


def read_bvh(path: str | Path) -> BvhMotion:
    return parse_bvh(Path(path).read_text(errors="replace"))


def axis_rotations(angles_rad: np.ndarray, axis: int) -> np.ndarray:
    """Rotation matrices about a coordinate axis: ``(N,)`` radians in, ``(N, 3, 3)`` out."""
    c, s = np.cos(angles_rad), np.sin(angles_rad)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = np.zeros(angles_rad.shape + (3, 3))
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def _local_transform(motion: BvhMotion, j: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-frame local rotation ``(F, 3, 3)`` (None if no rotation channels) and translation
    ``(F, 3)`` or ``(3,)`` of joint ``j``."""
    sk = motion.skeleton
    rot: np.ndarray | None = None
    trans: np.ndarray = sk.offsets[j]
    for k, ch in enumerate(sk.channels[j]):
        col = motion.motion[:, sk.channel_start[j] + k]  # (F,)
        axis = _AXES[ch[0].upper()]
        if ch[1:].lower() == "position":
            if trans.ndim == 1:
                trans = np.zeros((len(col), 3))
            trans[:, axis] = col
        elif ch[1:].lower() == "rotation":
            r = axis_rotations(np.deg2rad(col), axis)
            rot = r if rot is None else rot @ r
        else:
            raise ValueError(f"unknown BVH channel {ch!r}")
    return rot, trans


def forward_kinematics(motion: BvhMotion, joints: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """World positions ``(F, J, 3)`` and rotations ``(F, J, 3, 3)`` of the named joints, in
    file units and axes. Only the named joints' ancestors are evaluated."""
    sk = motion.skeleton
    wanted = [sk.index(n) for n in joints]
    needed: set[int] = set()
    for j in wanted:
        while j >= 0 and j not in needed:
            needed.add(j)
            j = sk.parents[j]
    n_frames = motion.motion.shape[0]
    g_rot: dict[int, np.ndarray] = {}
    g_pos: dict[int, np.ndarray] = {}
    eye = np.broadcast_to(np.eye(3), (n_frames, 3, 3))
    for j in sorted(needed):  # parents precede children in file order
        rot, trans = _local_transform(motion, j)
        p = sk.parents[j]
        if p < 0:
            g_pos[j] = np.broadcast_to(trans, (n_frames, 3)).copy()
            g_rot[j] = eye if rot is None else rot
        else:
            g_pos[j] = g_pos[p] + np.einsum(
                "fij,fj->fi", g_rot[p], np.broadcast_to(trans, (n_frames, 3))
            )
            g_rot[j] = g_rot[p] if rot is None else g_rot[p] @ rot
    pos = np.stack([g_pos[j] for j in wanted], axis=1)
    rot_out = np.stack([np.asarray(g_rot[j]) for j in wanted], axis=1)
    return pos, rot_out
