"""Per-frame motion features for the canonical skeleton (COCO-17, metres, Y up), and back.

The diffusion model works on a ``(T, F)`` feature sequence rather than raw joints: features
are invariant to where the motion starts and which way it faces, and they separate the
trajectory (which integrates) from the pose (which does not); ``layout`` names the channels.

The heading ``theta`` is the yaw of the body's forward direction (``skeleton.facing``) about
+Y, measured from +Z; the heading frame is the world rotated by ``-theta`` about Y, so the
body faces +Z in it. ``features_to_joints`` integrates heading and root velocity from the
origin, so it returns the *canonical* motion: root of frame 0 above the origin, frame 0
facing +Z (``canonicalize`` gives the same thing from joints). Joint velocities and foot
contacts are redundant channels (not used by ``features_to_joints``); a loss may tie them
to the positions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from videomdm.models.motion.layout import FEATURE_DIM, FEATURE_LAYOUT
from videomdm.models.motion.skeleton import (
    JOINT_INDEX,
    NUM_JOINTS,
    PARENTS,
    RIGID_BONES,
    facing,
    root,
)

log = logging.getLogger(__name__)

FOOT_JOINTS: tuple[int, int] = (JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"])
# An ankle is in contact when it moves slower than this and sits within CONTACT_HEIGHT_M of
# the clip's lowest ankle position (the floor is not known exactly for lifted motions).
CONTACT_SPEED_MPS = 0.5
CONTACT_HEIGHT_M = 0.12


def heading_angles(joints: np.ndarray) -> np.ndarray:
    """Yaw of the body's forward direction about +Y, from +Z: ``(T, 17, 3)`` -> ``(T,)``."""
    fwd = facing(joints)  # (T, 3)
    return np.arctan2(fwd[..., 0], fwd[..., 2])


def _yaw_rotate_np(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate vectors ``(..., 3)`` by ``angle`` ``(...)`` about +Y (X -> -Z for +90 deg)."""
    c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
    x, y, z = v[..., 0:1], v[..., 1:2], v[..., 2:3]
    return np.concatenate([c * x + s * z, y, -s * x + c * z], axis=-1)


def _yaw_rotate(v: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Torch twin of ``_yaw_rotate_np``: ``(..., 3)`` by ``(...)``."""
    c, s = torch.cos(angle)[..., None], torch.sin(angle)[..., None]
    x, y, z = v[..., 0:1], v[..., 1:2], v[..., 2:3]
    return torch.cat([c * x + s * z, y, -s * x + c * z], dim=-1)


def _check_joints(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or joints.shape[0] < 1:
        raise ValueError(f"expected joints (T>=1, {NUM_JOINTS}, 3), got {joints.shape}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joints contain NaN or inf")
    return joints


def canonicalize(joints: np.ndarray) -> np.ndarray:
    """Move a motion so frame 0's root is above the origin and frame 0 faces +Z.

    ``(T, 17, 3)`` -> ``(T, 17, 3)`` float64; heights are kept. This is what
    ``features_to_joints(joints_to_features(joints))`` returns.
    """
    joints = _check_joints(joints)
    r0 = root(joints[0])  # (3,)
    shifted = joints - np.array([r0[0], 0.0, r0[2]])
    return _yaw_rotate_np(shifted, np.full(shifted.shape[:-1], -heading_angles(joints[:1])[0]))


def foot_contacts(joints: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Ankle contact flags ``(T, 2)`` (left, right) from speed and height."""
    feet = joints[:, list(FOOT_JOINTS), :]  # (T, 2, 3)
    speed = np.zeros(feet.shape[:2])
    speed[1:] = np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps
    low = feet[..., 1] < feet[..., 1].min() + CONTACT_HEIGHT_M
    return ((speed < CONTACT_SPEED_MPS) & low).astype(np.float64)


def joints_to_features(joints: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Joints ``(T, 17, 3)`` (metres, Y up) to features ``(T, FEATURE_DIM)`` float32.

    Computed in float64; see the module docstring for the layout.
    """
    joints = _check_joints(joints)
    n = joints.shape[0]
    theta = heading_angles(joints)  # (T,)
    r = root(joints)  # (T, 3)
    dtheta = np.zeros(n)
    dtheta[1:] = (np.diff(theta) + math.pi) % (2 * math.pi) - math.pi
    droot = np.zeros((n, 3))
    droot[1:] = np.diff(r, axis=0)
    droot[:, 1] = 0.0
    root_vel = _yaw_rotate_np(droot, -theta)[:, [0, 2]]  # (T, 2)
    local_pos = _yaw_rotate_np(joints - r[:, None, :], -theta[:, None].repeat(NUM_JOINTS, 1))
    vel = np.zeros_like(joints)
    vel[1:] = np.diff(joints, axis=0)
    local_vel = _yaw_rotate_np(vel, -theta[:, None].repeat(NUM_JOINTS, 1))  # (T, 17, 3)
    feats = np.concatenate(
        [
            r[:, 1:2],
            root_vel,
            dtheta[:, None],
            local_pos.reshape(n, -1),
            local_vel.reshape(n, -1),
            foot_contacts(joints, fps),
        ],
        axis=-1,
    )
    assert feats.shape == (n, FEATURE_DIM)
    return feats.astype(np.float32)


def features_to_joints(feats: torch.Tensor) -> torch.Tensor:
    """Features ``(B, T, FEATURE_DIM)`` to canonical joints ``(B, T, 17, 3)``; differentiable.

    Integrates heading and root planar velocity from the origin (cumulative sums), then
    places the root-relative joints. Padding after a clip's end does not affect its frames.
    """
    if feats.shape[-1] != FEATURE_DIM:
        raise ValueError(f"expected {FEATURE_DIM} features in the last axis, got {feats.shape}")
    lay = FEATURE_LAYOUT
    theta = torch.cumsum(feats[..., lay["heading_vel"]][..., 0], dim=-1)  # (B, T)
    vel = feats[..., lay["root_vel"]]  # (B, T, 2)
    vel3 = torch.stack([vel[..., 0], torch.zeros_like(vel[..., 0]), vel[..., 1]], dim=-1)
    planar = torch.cumsum(_yaw_rotate(vel3, theta), dim=-2)  # (B, T, 3), Y = 0
    root_pos = planar + torch.nn.functional.pad(feats[..., lay["root_y"]], (1, 1))  # (B, T, 3)
    local = feats[..., lay["local_pos"]].unflatten(-1, (NUM_JOINTS, 3))  # (B, T, 17, 3)
    world = _yaw_rotate(local, theta[..., None].expand(local.shape[:-1]))
    return world + root_pos[..., None, :]


class Normalizer:
    """Per-feature mean and std (``(FEATURE_DIM,)`` tensors) for z-scoring features.

    Dimensions that barely vary (std below ``min_std``) are divided by ``min_std`` instead,
    so constant channels (frame-0 velocities, a clip with no contacts) do not blow up.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        if mean.shape != std.shape or mean.ndim != 1:
            raise ValueError(
                f"mean and std must be equal 1-D shapes, got {mean.shape}, {std.shape}"
            )
        self.mean = mean.float()
        self.std = std.float()

    @classmethod
    def fit(
        cls, features: Sequence[np.ndarray | torch.Tensor], min_std: float = 1e-3
    ) -> Normalizer:
        """Mean and std over every frame of ``features`` (each ``(T, F)``)."""
        if len(features) == 0:
            raise ValueError("Normalizer.fit needs at least one feature sequence")
        allf = torch.cat([torch.as_tensor(np.asarray(f), dtype=torch.float64) for f in features])
        mean, std = allf.mean(dim=0), allf.std(dim=0, correction=0)
        log.info("normalizer fitted on %d frames of %d motions", allf.shape[0], len(features))
        return cls(mean, std.clamp(min=min_std))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features ``(..., F)`` to z-scores ``(..., F)``."""
        return (x - self.mean.to(x)) / self.std.to(x)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """Z-scores ``(..., F)`` to raw features ``(..., F)``."""
        return z * self.std.to(z) + self.mean.to(z)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "std": self.std.clone()}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> Normalizer:
        return cls(state["mean"], state["std"])

    def save(self, path: str | Path) -> None:
        torch.save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        return cls.from_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def redundant_features(joints: torch.Tensor, fps: float = 30.0) -> torch.Tensor:
    """The redundant channels (``local_vel``, ``foot_contact``) recomputed from joints
    ``(B, T, 17, 3)``: ``(B, T, 53)``. Torch twin of that part of ``joints_to_features``, used
    as a (detached) self-consistency target so that 2D-only training needs no 3D for them."""
    li, ri = (
        [JOINT_INDEX["left_hip"], JOINT_INDEX["left_shoulder"]],
        [JOINT_INDEX["right_hip"], JOINT_INDEX["right_shoulder"]],
    )
    left = (joints[..., li, :] - joints[..., ri, :]).sum(dim=-2)  # (B, T, 3)
    theta = torch.atan2(-left[..., 2], left[..., 0])  # skeleton.facing with up = +Y
    vel = torch.nn.functional.pad(joints.diff(dim=-3), (0, 0, 0, 0, 1, 0))  # (B, T, 17, 3)
    local_vel = _yaw_rotate(vel, -theta[..., None].expand(vel.shape[:-1]))
    feet = joints[..., list(FOOT_JOINTS), :]  # (B, T, 2, 3)
    speed = torch.nn.functional.pad(feet.diff(dim=-3).norm(dim=-1) * fps, (0, 0, 1, 0))
    floor = feet[..., 1].flatten(-2).amin(-1)[..., None, None]  # (B, 1, 1)
    contact = (speed < CONTACT_SPEED_MPS) & (feet[..., 1] < floor + CONTACT_HEIGHT_M)
    return torch.cat([local_vel.flatten(-2), contact.to(joints.dtype)], dim=-1)


def _tree_order() -> tuple[int, ...]:
    """Joints parents first (``skeleton.PARENTS``)."""
    order, todo = [PARENTS.index(-1)], [j for j in range(NUM_JOINTS) if PARENTS[j] >= 0]
    while todo:
        ready = [j for j in todo if PARENTS[j] in order]
        order += ready
        todo = [j for j in todo if j not in ready]
    return tuple(order)


_TREE_ORDER = _tree_order()


def rigid_features(feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Features ``(B, T, FEATURE_DIM)`` (raw, not normalised) whose body keeps its bones: each
    rigid bone (``skeleton.RIGID_BONES``) set to its median length over the window's frames
    (``mask`` ``(B, T)``, True on real ones), its direction kept, rebuilt down the tree from the
    left hip and re-centred on the hip midpoint; the velocity channels move with the joints.

    The motion counterpart of clipping an image diffusion model's x0 estimate to the pixel
    range: a projection onto bodies that can exist, applied to x0_hat while sampling
    (``DiffusionConfig.rigid_bones``)."""
    lay = FEATURE_LAYOUT
    local = feats[..., lay["local_pos"]].unflatten(-1, (NUM_JOINTS, 3))  # (B, T, 17, 3)
    parents = torch.tensor([max(p, 0) for p in PARENTS], device=feats.device)
    bones = local - local[..., parents, :]  # (B, T, 17, 3), zero at the root
    length = bones.norm(dim=-1, keepdim=True)  # (B, T, 17, 1)
    real = length.clone()
    if mask is not None:
        real = real.masked_fill(~mask[..., None, None], float("nan"))
    target = real.nanmedian(dim=1, keepdim=True).values  # (B, 1, 17, 1)
    rigid = torch.zeros(NUM_JOINTS, 1, dtype=torch.bool, device=feats.device)
    rigid[[c for c, _ in RIGID_BONES]] = True
    scaled = torch.where(rigid, bones / length.clamp(min=1e-6) * target, bones)
    joints: list[torch.Tensor | None] = [None] * NUM_JOINTS
    for j in _TREE_ORDER:
        p = PARENTS[j]
        joints[j] = local[..., j, :] if p < 0 else joints[p] + scaled[..., j, :]  # type: ignore[operator]
    new = torch.stack(joints, dim=-2)  # type: ignore[arg-type]
    hips = [JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]]
    new = new - new[..., hips, :].mean(dim=-2, keepdim=True)
    delta = new - local  # (B, T, 17, 3) in each frame's heading frame
    # local_vel_t = R(-theta_t) (x_t - x_{t-1}): the change of delta in frame t's heading
    dtheta = feats[..., lay["heading_vel"]][..., 0]  # (B, T)
    prev = _yaw_rotate(delta[:, :-1], -dtheta[:, 1:, None].expand(delta[:, 1:].shape[:-1]))
    dvel = torch.nn.functional.pad(delta[:, 1:] - prev, (0, 0, 0, 0, 1, 0))
    out = feats.clone()
    out[..., lay["local_pos"]] = new.flatten(-2)
    out[..., lay["local_vel"]] = feats[..., lay["local_vel"]] + dvel.flatten(-2)
    return out
