"""Load real motion capture into the canonical skeleton (COCO-17, metres, Y up, common fps).

Each source has one mapping table (``RigSpec`` for BVH rigs, ``DEEPMIMIC_*`` and
``HUMANML3D_*`` below) from its joints to the 12 COCO body joints. The COCO face points
(nose, eyes, ears) are not in any rig; they are fixed offsets in a head frame (``FACE_OFFSETS``)
anchored at the rig's head joint. The head frame is the head joint's rotation times the rig's
fixed local head axes (``RigSpec.head_axes``, checked by ``estimate_head_axes``) where the
source has rotations, and comes from neck and shoulder positions where it has only
positions (HumanML3D). The anchor heights were set so that the eyes sit about 0.45 x the
hip-to-shoulder height above the shoulders on every source (the CMU-iClone rig's own eye
joints, at that height, agree with our eyes to 3 mm).

``load_mocap_dir`` walks a folder, detects each file's format and rig, and returns
``MocapClip`` s resampled to one frame rate by linear interpolation.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videomdm.errors import UserError
from videomdm.models.motion import bvh, rigs
from videomdm.models.motion.rigs import (
    DEEPMIMIC_FK,
    DEEPMIMIC_HEAD,
    DEEPMIMIC_HEAD_AXES,
    RIGS,
    RigSpec,
)
from videomdm.models.motion.skeleton import NUM_JOINTS

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0

# Face keypoints relative to the skull-base head joint, in the head frame (left, up,
# forward), metres, in COCO order nose, left_eye, right_eye, left_ear, right_ear. The eyes
# match the CMU-iClone rig's eye joints (8 cm up, 8 cm forward, 6.6 cm apart); nose tip and
# ear canals follow average adult head proportions (nose 4 cm below and 3 cm in front of the
# eyes; ear canals 15 cm apart, level with the nose tip, above the skull base).
FACE_OFFSETS = np.array(
    [
        [0.0, 0.045, 0.11],
        [0.033, 0.08, 0.08],
        [-0.033, 0.08, 0.08],
        [0.075, 0.045, 0.0],
        [-0.075, 0.045, 0.0],
    ]
)
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # (x,y,z)->(x,z,-y)


@dataclass(frozen=True)
class MocapClip:
    name: str  # file stem
    source: str  # rig / format id, e.g. "bandai_bvh" (see rigs)
    joints: np.ndarray  # (T, 17, 3) float32, metres, Y up
    fps: float
    text: str = ""  # label or caption ("walk (tired)", CMU description, or from the name)
    path: str = ""


class MocapClipList(list[MocapClip]):  # also carries the files that failed
    def __init__(self, clips: list[MocapClip], failures: list[tuple[str, str]]):
        super().__init__(clips)
        self.failures = failures  # (path, error message)


# --- geometry ---------------------------------------------------------------------------


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def body_head_frame(
    head: np.ndarray, neck: np.ndarray, l_sho: np.ndarray, r_sho: np.ndarray
) -> np.ndarray:
    """Per-frame head basis from positions: columns (left, up, forward), ``(T, 3, 3)``.
    Up is neck -> head, left is right shoulder -> left shoulder, forward = left x up."""
    up = _normalise(head - neck)
    fwd = _normalise(np.cross(l_sho - r_sho, up))
    return np.stack([np.cross(up, fwd), up, fwd], axis=-1)


def estimate_head_axes(head_rot: np.ndarray, body_frame: np.ndarray) -> np.ndarray:
    """Estimate a rig's local head axes (left, up, forward), ``(3, 3)`` columns, from a clip.

    BVH rigs put their joint axes anywhere (Bandai's run along the bone, iClone's rest pose
    is not a human pose). This is the mean over frames of the head's rotation relative to a
    position-based head frame ``(T, 3, 3)``, snapped to the nearest signed axis permutation.
    It is right for clips where the head mostly looks where the chest points, wrong for some
    (sideways walks), which is why the loaders use fixed per-rig axes and tests use this.
    """
    m = np.einsum("tji,tjk->ik", head_rot, body_frame)  # sum of R^T B, (3, 3)
    snapped = np.zeros((3, 3))
    for col in range(3):
        row = int(np.argmax(np.abs(m[:, col])))
        snapped[row, col] = np.sign(m[row, col])
        m[row, :] = 0.0  # each local axis used once
    return snapped


def face_points(head: np.ndarray, frame: np.ndarray, anchor_up: float = 0.0) -> np.ndarray:
    """Face keypoints ``(T, 5, 3)`` from a head point ``(T, 3)`` and head basis ``(T, 3, 3)``
    (columns left, up, forward). ``anchor_up`` moves the anchor along the head's up axis."""
    offsets = FACE_OFFSETS + np.array([0.0, anchor_up, 0.0])
    return head[:, None, :] + np.einsum("tij,kj->tki", frame, offsets)


def resample(joints: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    """Linearly interpolate ``(T, J, 3)`` samples at strictly increasing ``times`` (s) onto a
    uniform grid starting at ``times[0]`` with step ``1 / fps``."""
    if fps <= 0:
        raise UserError(f"fps must be positive, got {fps}")
    t_new = np.arange(times[0], times[-1] + 1e-6, 1.0 / fps)
    idx = np.clip(np.searchsorted(times, t_new, side="right") - 1, 0, max(len(times) - 2, 0))
    if len(times) == 1:
        return joints[:1].copy()
    w = ((t_new - times[idx]) / (times[idx + 1] - times[idx]))[:, None, None]
    return (1.0 - w) * joints[idx] + w * joints[idx + 1]


def _to_clip(
    path: Path, source: str, joints: np.ndarray, times: np.ndarray, fps: float, text: str
) -> MocapClip:
    out = resample(joints, times, fps).astype(np.float32)  # (T', 17, 3)
    return MocapClip(path.stem, source, out, float(fps), text, str(path))


# --- BVH ----------------------------------------------------------------------------------


def detect_rig(names: tuple[str, ...]) -> RigSpec:
    for rig in RIGS:
        if rig.marker in names:
            return rig
    raise UserError(f"unknown BVH rig; known rigs: {[r.source for r in RIGS]}")


def bvh_to_canonical(motion: bvh.BvhMotion, rig: RigSpec) -> np.ndarray:
    """Canonical joints ``(F, 17, 3)`` at the file's frame rate."""
    names = [*rig.body, rig.head, rig.neck]
    pos, rot = bvh.forward_kinematics(motion, names)  # (F, 14, 3), (F, 14, 3, 3)
    pos = pos * rig.scale
    if rig.z_up:
        pos = pos @ Z_UP_TO_Y_UP.T
        rot = Z_UP_TO_Y_UP @ rot
    body, head = pos[:, :12], pos[:, 12]
    face = face_points(head, rot[:, 12] @ np.asarray(rig.head_axes, float), rig.anchor_up)
    return np.concatenate([face, body], axis=1)


def load_bvh(path: str | Path, fps: float = DEFAULT_FPS, text: str | None = None) -> MocapClip:
    path = Path(path)
    motion = bvh.read_bvh(path)
    rig = detect_rig(motion.skeleton.names)
    joints = bvh_to_canonical(motion, rig)
    times = np.arange(len(joints)) * motion.frame_time
    label = text if text is not None else rigs.label_for(path, rig.source)
    return _to_clip(path, rig.source, joints, times, fps, label)


# --- DeepMimic ----------------------------------------------------------------------------


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` (w, x, y, z) to rotation matrices ``(..., 3, 3)``."""
    w, x, y, z = np.moveaxis(_normalise(q), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def deepmimic_fk(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeepMimic humanoid3d frames ``(F, 44)`` to joint positions ``(F, 15, 3)`` and
    rotations ``(F, 15, 3, 3)`` in ``DEEPMIMIC_FK`` order (metres, Y up)."""
    n = len(frames)
    pos = np.zeros((n, len(DEEPMIMIC_FK), 3))
    rot = np.zeros((n, len(DEEPMIMIC_FK), 3, 3))
    pos[:, 0] = frames[:, 1:4]
    rot[:, 0] = quat_wxyz_to_matrix(frames[:, 4:8])
    col = 8
    for j, (_, parent, offset, dof) in enumerate(DEEPMIMIC_FK[1:], start=1):
        if dof == 4:
            local = quat_wxyz_to_matrix(frames[:, col : col + 4])
        elif dof == 1:  # revolute joints turn about their z axis
            local = bvh.axis_rotations(frames[:, col], 2)
        else:
            local = np.broadcast_to(np.eye(3), (n, 3, 3))
        col += dof
        pos[:, j] = pos[:, parent] + rot[:, parent] @ np.asarray(offset)
        rot[:, j] = rot[:, parent] @ local
    if col != frames.shape[1]:
        raise UserError(f"DeepMimic frame has {frames.shape[1]} values, humanoid3d needs {col}")
    return pos, rot


def load_deepmimic(path: str | Path, fps: float = DEFAULT_FPS) -> MocapClip:
    path = Path(path)
    data = json.loads(path.read_text())
    frames = np.asarray(data["Frames"], dtype=np.float64)  # (F, 44): dt, root pos, quats...
    if frames.ndim != 2 or len(frames) < 2:
        raise UserError("DeepMimic file needs at least two frames")
    pos, rot = deepmimic_fk(frames)
    names = [n for n, *_ in DEEPMIMIC_FK]
    body = pos[:, [names.index(n) for n in rigs.DEEPMIMIC_BODY]]
    neck = names.index("neck")
    head = pos[:, neck] + rot[:, neck] @ np.array([0.0, DEEPMIMIC_HEAD, 0.0])
    face = face_points(head, rot[:, neck] @ np.asarray(DEEPMIMIC_HEAD_AXES, float))
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    keep = np.concatenate([[True], np.diff(times) > 1e-6])  # drop zero-length frames
    joints = np.concatenate([face, body], axis=1)[keep]
    text = rigs.label_for(path, "deepmimic")
    return _to_clip(path, "deepmimic", joints, times[keep], fps, text)


# --- HumanML3D ----------------------------------------------------------------------------


def load_humanml3d(path: str | Path, fps: float = DEFAULT_FPS, src_fps: float = 20.0) -> MocapClip:
    """A HumanML3D ``new_joints`` array (T, 22, 3): SMPL joints, metres, Y up, 20 fps."""
    path = Path(path)
    smpl = np.load(path).astype(np.float64)
    if smpl.ndim != 3 or smpl.shape[1:] != (22, 3):
        raise UserError(f"expected HumanML3D new_joints (T, 22, 3), got {smpl.shape}")
    body = smpl[:, list(rigs.HUMANML3D_BODY)]
    head, neck = smpl[:, rigs.HUMANML3D_HEAD], smpl[:, rigs.HUMANML3D_NECK]
    frame = body_head_frame(head, neck, body[:, 0], body[:, 1])
    face = face_points(head, frame, rigs.HUMANML3D_ANCHOR_UP)
    joints = np.concatenate([face, body], axis=1)
    times = np.arange(len(joints)) / src_fps
    return _to_clip(path, "humanml3d", joints, times, fps, rigs.label_for(path, "humanml3d"))


# --- directory walk -----------------------------------------------------------------------


def _sniff(path: Path) -> str | None:
    """The loader for a file, or None for files that are not motions (labels, licences)."""
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        return "bvh"
    if suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
        return "humanml3d" if arr.ndim == 3 and arr.shape[1:] == (22, 3) else None
    if suffix in (".txt", ".json"):
        with path.open("rb") as fh:
            head = fh.read(256).lstrip()
        if head.startswith(b"{") and re.search(rb'"(Loop|Frames)"', head):
            return "deepmimic"
    return None


def load_mocap_file(path: str | Path, fps: float = DEFAULT_FPS) -> MocapClip | None:
    """Load one motion file, or return None if it is not a motion file at all."""
    path = Path(path)
    kind = _sniff(path)
    if kind == "bvh":
        return load_bvh(path, fps)
    if kind == "deepmimic":
        return load_deepmimic(path, fps)
    if kind == "humanml3d":
        return load_humanml3d(path, fps)
    return None


def load_mocap_dir(path: str | Path, fps: float = DEFAULT_FPS) -> MocapClipList:
    """Every motion under ``path`` (recursively), resampled to ``fps``.

    A file that fails to parse is logged by name and skipped; the returned list's
    ``failures`` holds ``(path, error)`` for each one.
    """
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root} is not a directory")
    clips: list[MocapClip] = []
    failures: list[tuple[str, str]] = []
    start = time.perf_counter()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            clip = load_mocap_file(file, fps)
        except Exception as exc:  # noqa: BLE001 - any broken file is skipped, not fatal
            log.warning("skipping %s: %s: %s", file, type(exc).__name__, exc)
            failures.append((str(file), f"{type(exc).__name__}: {exc}"))
            continue
        if clip is not None:
            assert clip.joints.shape[1:] == (NUM_JOINTS, 3)
            clips.append(clip)
    log.info(
        "loaded %d mocap clips (%d failed) from %s in %.1f s",
        len(clips),
        len(failures),
        root,
        time.perf_counter() - start,
    )
    return MocapClipList(clips, failures)
