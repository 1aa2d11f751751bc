"""Per-source mapping tables to the canonical COCO-17 skeleton, and per-source labels.

One table per source: which of its joints is each COCO body joint (in COCO order
left_shoulder, right_shoulder, left_elbow, right_elbow, left_wrist, right_wrist, left_hip,
right_hip, left_knee, right_knee, left_ankle, right_ankle), which joint carries the head
frame, the unit scale to metres and the up axis. The face points are added in mocap.py.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from videomdm.models.motion.skeleton import JOINT_NAMES

# CMU's ASF/AMC length unit: (1.0 / 0.45) * 2.54 / 100 m (mocap.cs.cmu.edu FAQ).
CMU_SCALE = 0.056444
# The AnimatedDrawings "fair1" clips do not say their unit. Hips stand ~25 units high and the
# head joint ~43; this scale gives the actor a 1.70 m stature (our estimate, not theirs).
ANIMATED_DRAWINGS_SCALE = 0.0375


@dataclass(frozen=True)
class RigSpec:
    source: str  # MocapClip.source for clips on this rig
    marker: str  # a joint name only this rig has: how a BVH file is recognised
    body: tuple[str, ...]  # 12 joint names, COCO order from left_shoulder to right_ankle
    head: str  # joint at the skull base whose rotation is the head frame
    neck: str  # joint below it (head frame "up" = neck -> head)
    scale: float  # file units -> metres
    z_up: bool = False  # file is Z up (converted to Y up by a proper rotation)
    # head joint's local axes: rows local x, y, z; columns the head's (left, up, forward).
    # Checked against estimate_head_axes() on every clip of the source (tests).
    head_axes: tuple[tuple[float, float, float], ...] = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    anchor_up: float = 0.0  # metres from the head joint up to the skull base


def _lr(left: str, right: str) -> tuple[str, str]:
    return (left, right)


RIGS: tuple[RigSpec, ...] = (
    RigSpec(  # CMU ASF skeleton as converted to BVH (31 joints), Y up
        source="cmu_bvh",
        marker="LHipJoint",
        body=(
            *_lr("LeftShoulder", "RightShoulder"),
            *_lr("LeftElbow", "RightElbow"),
            *_lr("LeftWrist", "RightWrist"),
            *_lr("LeftHip", "RightHip"),
            *_lr("LeftKnee", "RightKnee"),
            *_lr("LeftAnkle", "RightAnkle"),
        ),
        head="Head",
        neck="Neck",
        scale=CMU_SCALE,
    ),
    RigSpec(  # AnimatedDrawings' own captures, Mixamo-like names, Z up, unknown unit
        source="mixamo_bvh",
        marker="LeftUpLeg",
        body=(
            *_lr("LeftArm", "RightArm"),
            *_lr("LeftForeArm", "RightForeArm"),
            *_lr("LeftHand", "RightHand"),
            *_lr("LeftUpLeg", "RightUpLeg"),
            *_lr("LeftLeg", "RightLeg"),
            *_lr("LeftFoot", "RightFoot"),
        ),
        head="Head",
        neck="Neck",
        scale=ANIMATED_DRAWINGS_SCALE,
        z_up=True,
        head_axes=((1, 0, 0), (0, 0, -1), (0, 1, 0)),  # left x, up z, forward -y
        anchor_up=-0.03,  # its Head joint sits ~3 cm above the skull base (vs the torso)
    ),
    RigSpec(  # Bandai Namco Research Motiondataset-1 (22 joints, cm, Y up)
        source="bandai_bvh",
        marker="UpperLeg_L",
        body=(
            *_lr("UpperArm_L", "UpperArm_R"),
            *_lr("LowerArm_L", "LowerArm_R"),
            *_lr("Hand_L", "Hand_R"),
            *_lr("UpperLeg_L", "UpperLeg_R"),
            *_lr("LowerLeg_L", "LowerLeg_R"),
            *_lr("Foot_L", "Foot_R"),
        ),
        head="Head",
        neck="Neck",
        scale=0.01,
        head_axes=((0, 1, 0), (0, 0, 1), (1, 0, 0)),  # bones run along x: up x, fwd y, left z
    ),
    RigSpec(  # CMU retargeted to Reallusion CC (100 joints, cm); 002_01-03's extra
        # RL_BoneRoot rotates a Z-up hierarchy to Y up through its own channels, so FK of
        # every file comes out Y up.
        source="iclone_bvh",
        marker="CC_Base_Hip",
        body=(
            *_lr("CC_Base_L_Upperarm", "CC_Base_R_Upperarm"),
            *_lr("CC_Base_L_Forearm", "CC_Base_R_Forearm"),
            *_lr("CC_Base_L_Hand", "CC_Base_R_Hand"),
            *_lr("CC_Base_L_Thigh", "CC_Base_R_Thigh"),
            *_lr("CC_Base_L_Calf", "CC_Base_R_Calf"),
            *_lr("CC_Base_L_Foot", "CC_Base_R_Foot"),
        ),
        head="CC_Base_Head",
        neck="CC_Base_NeckTwist01",
        scale=0.01,
    ),
)

# DeepMimic humanoid3d: (name, parent index, offset in the parent's frame (m), values per
# frame). Offsets are the "AttachX/Y/Z" of data/characters/humanoid3d.txt in
# github.com/xbpeng/DeepMimic (MIT); the order is the order of a motion frame after
# dt (1), root position (3) and root quaternion (4). Its frame is Y up, X forward, Z right.
# Wrists are fixed joints (no values in the motion).
DEEPMIMIC_FK: tuple[tuple[str, int, tuple[float, float, float], int], ...] = (
    ("root", -1, (0.0, 0.0, 0.0), 0),
    ("chest", 0, (0.0, 0.236151, 0.0), 4),
    ("neck", 1, (0.0, 0.223894, 0.0), 4),
    ("right_hip", 0, (0.0, 0.0, 0.084887), 4),
    ("right_knee", 3, (0.0, -0.421546, 0.0), 1),
    ("right_ankle", 4, (0.0, -0.409870, 0.0), 4),
    ("right_shoulder", 1, (-0.02405, 0.24350, 0.18311), 4),
    ("right_elbow", 6, (0.0, -0.274788, 0.0), 1),
    ("right_wrist", 7, (0.0, -0.258947, 0.0), 0),
    ("left_hip", 0, (0.0, 0.0, -0.084887), 4),
    ("left_knee", 9, (0.0, -0.421546, 0.0), 1),
    ("left_ankle", 10, (0.0, -0.409870, 0.0), 4),
    ("left_shoulder", 1, (-0.02405, 0.24350, -0.18311), 4),
    ("left_elbow", 12, (0.0, -0.274788, 0.0), 1),
    ("left_wrist", 13, (0.0, -0.258947, 0.0), 0),
)
DEEPMIMIC_BODY: tuple[str, ...] = JOINT_NAMES[5:]  # the 12 body joints, COCO order
# humanoid3d has no head joint: its head sphere is centred 0.175 m above the neck joint
# (radius 0.1025); the skull base is ~0.10 m above the neck joint.
DEEPMIMIC_HEAD = 0.10
DEEPMIMIC_HEAD_AXES = ((0, 0, 1), (0, 1, 0), (-1, 0, 0))  # neck frame: x fwd, y up, z right

# HumanML3D new_joints: the 22 SMPL body joints (0 pelvis, 1 L_hip, 2 R_hip, 4 L_knee,
# 5 R_knee, 7 L_ankle, 8 R_ankle, 12 neck, 15 head, 16 L_shoulder, 17 R_shoulder, 18 L_elbow,
# 19 R_elbow, 20 L_wrist, 21 R_wrist), metres, Y up, 20 fps.
HUMANML3D_BODY: tuple[int, ...] = (16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
HUMANML3D_HEAD = 15
HUMANML3D_NECK = 12
HUMANML3D_ANCHOR_UP = -0.03  # SMPL's head joint sits ~3 cm above the skull base


# --- labels -------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _label_lines(path: Path) -> tuple[str, ...]:
    if not path.exists():
        return ()
    return tuple(line.strip().removeprefix("dataset-1_") for line in path.read_text().splitlines())


def _bandai_label(path: Path) -> str | None:
    meta = path.with_suffix(".json")
    contents = _label_lines(path.parent / "content_label.txt")
    styles = _label_lines(path.parent / "style_label.txt")
    if meta.exists() and contents and styles:
        ids = json.loads(meta.read_text())
        content, style = contents[int(ids["content"])], styles[int(ids["style"])]
    else:  # dataset-1_{content}_{style}_{id}
        parts = path.stem.split("_")
        if len(parts) < 4:
            return None
        content, style = parts[1], parts[2]
    return f"{content.replace('-', ' ')} ({style.replace('-', ' ')})"


@lru_cache(maxsize=8)
def _cmu_descriptions(csv_path: Path) -> dict[tuple[int, int], str]:
    with csv_path.open(newline="") as fh:
        rows = csv.DictReader(fh)
        return {(int(r["Subject"]), int(r["Trial #"])): r["Motion Description"] for r in rows}


def _cmu_label(path: Path) -> str | None:
    m = re.fullmatch(r"(\d+)_(\d+)", path.stem)
    if not m:
        return None
    csv_path = path.parent / "CMU_data.csv"
    if csv_path.exists():
        desc = _cmu_descriptions(csv_path).get((int(m[1]), int(m[2])))
        if desc:
            return desc
    for readme in sorted(path.parent.glob("README*.md")):  # "131_01  Start Walk Stop"
        hit = re.search(rf"^{path.stem}\s+(\S.*)$", readme.read_text(), flags=re.MULTILINE)
        if hit:
            return hit[1].strip()
    return None


def _name_label(path: Path) -> str:
    stem = re.sub(r"^(sie_)?humanoid3d_|^fair1_|^cmu1_|^new_joints__", "", path.stem)
    return re.sub(r"\d+$", "", stem).replace("_", " ").strip()


def label_for(path: Path, source: str) -> str:
    """Text for a clip: dataset labels where the source has them, else the file name."""
    label = None
    if source == "bandai_bvh":
        label = _bandai_label(path)
    elif source in ("cmu_bvh", "iclone_bvh"):
        label = _cmu_label(path)
    return label or _name_label(path) or path.stem
