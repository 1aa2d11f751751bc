"""Training losses as pure functions with explicit camera and keypoint inputs.

Each loss returns a dict of *unweighted* terms plus ``n_*`` counters; ``total_loss`` is the
one place where terms are weighted and summed (``DEFAULT_WEIGHTS`` holds the paper's
lambdas), and every term goes to the log.

Reprojection (VideoMDM): with ``pi`` the projection to normalised image coordinates,
``u`` the detected keypoints, ``c`` their confidences and ``w = dbar^p`` (the sample's mean
camera depth of the predicted joints, detached)::

    reproj_pos = mean_b  w_b * mean_(t,j) c^2 * |pi(x) - u|^2
    reproj_vel = mean_b  w_b * mean_(t,j) c_t c_(t+1) * |d/dt pi(x) - d/dt u|^2

An error of ``e`` metres across the view shows as ``e / depth`` in normalised coordinates,
so ``p = 2`` makes the term measure squared metres at every distance (the theory test checks
this); the release code's ``p = 1`` over-weights near cameras.

Bad data never makes a NaN: non-finite keypoints and joints nearer than ``min_depth`` are
masked point by point, frames with fewer than ``min_joints`` usable points are masked, and
whole samples are dropped (and counted) when empty, with a non-finite camera, with no finite
keypoint, with most joints behind the camera, or with no usable frame left.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

import torch

from videomdm.models.motion.cameras import backproject_rays, project, world_to_camera
from videomdm.models.motion.skeleton import RIGID_BONES

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS: dict[str, float] = {"reproj_pos": 7.0, "reproj_vel": 7.0 * 50}
DROP_REASONS = ("empty", "bad_camera", "nan_2d", "behind_camera", "few_joints")
REDUCTIONS = ("mean", "none")


class _Views(NamedTuple):
    """Predicted joints in each sample's camera with the masks every 2D loss shares."""

    x_cam: torch.Tensor  # (B, T, J, 3) camera frame
    proj: torch.Tensor  # (B, T, J, 2) normalised coordinates (finite)
    u: torch.Tensor  # (B, T, J, 2) observed, non-finite set to 0
    conf: torch.Tensor  # (B, T, J) confidence, 0 where unusable
    point_ok: torch.Tensor  # (B, T, J) bool: usable point in a usable frame of a kept sample
    sample_ok: torch.Tensor  # (B,) bool
    counts: dict[str, torch.Tensor]  # n_* counters


def _finite_rows(x: torch.Tensor, dims: int) -> torch.Tensor:
    """True where the trailing ``dims`` axes are all finite."""
    return torch.isfinite(x).flatten(start_dim=x.ndim - dims).all(dim=-1)


def _views(
    joints_world: torch.Tensor,
    R: torch.Tensor,  # noqa: N803
    t: torch.Tensor,
    u: torch.Tensor,
    conf: torch.Tensor,
    mask: torch.Tensor,
    min_depth: float,
    min_joints: int,
) -> _Views:
    """Project, sanitise and mask: the shared first half of every 2D loss."""
    frame = mask.bool()  # (B, T)
    cam_ok = _finite_rows(R, 2) & _finite_rows(t, 1)  # (B,)
    R = torch.where(cam_ok[:, None, None], R, torch.eye(3, dtype=R.dtype, device=R.device))  # noqa: N806
    t = torch.where(cam_ok[:, None], t, torch.zeros_like(t))
    joints = torch.where(torch.isfinite(joints_world), joints_world, 0.0)
    x_cam = world_to_camera(joints, R[:, None], t[:, None])  # (B, T, J, 3)
    proj, in_front = project(x_cam, min_depth)  # (B, T, J, 2), (B, T, J)
    kp_ok = _finite_rows(u, 1) & torch.isfinite(conf) & (conf > 0)  # (B, T, J)
    kp_ok &= _finite_rows(joints_world, 1) & frame[..., None]
    point_ok = kp_ok & in_front
    frame_ok = point_ok.sum(dim=-1) >= min_joints  # (B, T)
    in_mask = frame[..., None].expand_as(in_front)
    front_frac = (in_front & in_mask).sum((1, 2)) / in_mask.sum((1, 2)).clamp(min=1)
    reasons = {
        "empty": frame.sum(1) == 0,
        "bad_camera": ~cam_ok,
        "nan_2d": kp_ok.sum((1, 2)) == 0,
        "behind_camera": front_frac < 0.5,
        "few_joints": frame_ok.sum(1) == 0,
    }
    counts, dropped = {}, torch.zeros_like(cam_ok)
    for name in DROP_REASONS:  # each sample counted under its first reason only
        counts[f"n_drop_{name}"] = (reasons[name] & ~dropped).sum().float()
        dropped |= reasons[name]
    sample_ok = ~dropped
    point_ok = point_ok & frame_ok[..., None] & sample_ok[:, None, None]
    counts["n_samples"] = torch.tensor(float(mask.shape[0]))
    counts["n_points_used"] = point_ok.sum().float()
    return _Views(
        x_cam,
        proj,
        torch.where(torch.isfinite(u), u, 0.0),
        torch.where(point_ok, conf, 0.0),
        point_ok,
        sample_ok,
        counts,
    )


def _per_sample_mean(sq_err: torch.Tensor, weight: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Sum of ``weight * sq_err`` over points over the number of usable points: ``(B,)``."""
    num = (torch.where(ok, weight * sq_err, 0.0)).flatten(1).sum(1)
    return num / ok.flatten(1).sum(1).clamp(min=1)


def _reduce(per_sample: torch.Tensor, sample_ok: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean over kept samples (0 with a gradient path when none is kept), or per sample
    ``(B,)`` with dropped samples at 0 for ``reduction="none"``."""
    kept = torch.where(sample_ok, per_sample, 0.0)
    if reduction == "none":
        return kept
    return kept.sum() / sample_ok.sum().clamp(min=1)


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def mean_depth(x_cam: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Mean camera depth of the usable points of each sample: ``(B, T, J, 3)`` -> ``(B,)``."""
    z = torch.where(ok, x_cam[..., 2], 0.0)
    return z.flatten(1).sum(1) / ok.flatten(1).sum(1).clamp(min=1)


def reprojection_loss(
    joints_world: torch.Tensor,
    R: torch.Tensor,  # noqa: N803
    t: torch.Tensor,
    u: torch.Tensor,
    conf: torch.Tensor,
    mask: torch.Tensor,
    depth_power: float = 2.0,
    min_depth: float = 0.1,
    min_joints: int = 4,
    reduction: str = "mean",
) -> dict[str, torch.Tensor]:
    """Depth-weighted 2D position and velocity reprojection terms (unweighted by lambda).

    ``joints_world`` ``(B, T, 17, 3)`` metres; ``R`` ``(B, 3, 3)``, ``t`` ``(B, 3)`` with
    ``X_cam = R X + t``; ``u`` ``(B, T, 17, 2)`` normalised keypoints; ``conf``
    ``(B, T, 17)``; ``mask`` ``(B, T)`` True on real frames. Returns ``reproj_pos``,
    ``reproj_vel``, ``depth_mean`` and the ``n_*`` counters; ``reduction="none"`` gives the
    three terms per sample ``(B,)``.
    """
    _check_reduction(reduction)
    if depth_power < 0:
        raise ValueError(f"depth_power must be >= 0, got {depth_power}")
    v = _views(joints_world, R, t, u, conf, mask, min_depth, min_joints)
    dbar = mean_depth(v.x_cam, v.point_ok).detach()  # (B,)
    w = dbar.clamp(min=min_depth) ** depth_power  # (B,)
    pos_err = (v.proj - v.u).square().sum(-1)  # (B, T, J)
    pos = _per_sample_mean(pos_err, v.conf.square(), v.point_ok)
    vel_ok = v.point_ok[:, 1:] & v.point_ok[:, :-1]  # (B, T-1, J)
    dproj, du = v.proj.diff(dim=1), v.u.diff(dim=1)
    vel_err = (dproj - du).square().sum(-1)  # (B, T-1, J)
    vel = _per_sample_mean(vel_err, v.conf[:, 1:] * v.conf[:, :-1], vel_ok)
    return {
        "reproj_pos": _reduce(w * pos, v.sample_ok, reduction),
        "reproj_vel": _reduce(w * vel, v.sample_ok, reduction),
        "depth_mean": _reduce(dbar, v.sample_ok, reduction),
        **v.counts,
    }


def snap_to_rays(x_cam: torch.Tensor, u: torch.Tensor, min_depth: float = 0.1) -> torch.Tensor:
    """Nearest point on the camera ray through each keypoint: ``(..., 3)``, ``(..., 2)`` ->
    ``(..., 3)`` camera frame (kept at least ``min_depth`` along the ray)."""
    d = backproject_rays(u)  # (..., 3) unit
    s = (x_cam * d).sum(-1, keepdim=True).clamp(min=min_depth)
    return s * d


def ray_consistency_loss(
    joints_world: torch.Tensor,
    R: torch.Tensor,  # noqa: N803
    t: torch.Tensor,
    u: torch.Tensor,
    conf: torch.Tensor,
    mask: torch.Tensor,
    min_depth: float = 0.1,
    min_joints: int = 4,
    reduction: str = "mean",
) -> dict[str, torch.Tensor]:
    """Squared distance (m^2) of each joint to its snap on the keypoint's ray (a detached
    target), weighted by ``conf^2``; same inputs and masking as ``reprojection_loss``."""
    _check_reduction(reduction)
    v = _views(joints_world, R, t, u, conf, mask, min_depth, min_joints)
    target = snap_to_rays(v.x_cam.detach(), v.u, min_depth)
    err = (v.x_cam - target).square().sum(-1)  # (B, T, J)
    per = _per_sample_mean(err, v.conf.square(), v.point_ok)
    return {"ray": _reduce(per, v.sample_ok, reduction), **v.counts}


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real frames: ``(B, T, ...)`` twice and ``mask`` ``(B, T)``."""
    ok = mask.bool() & _finite_rows(target, target.ndim - 2)  # (B, T)
    sq = torch.where(ok.reshape(ok.shape + (1,) * (pred.ndim - 2)), pred - target, 0.0).square()
    per_frame = sq.flatten(2).mean(-1)  # (B, T)
    return per_frame.sum() / ok.sum().clamp(min=1)


def supervised_3d_loss(
    pred_joints: torch.Tensor,
    target_joints: torch.Tensor,
    mask: torch.Tensor,
    pred_feats: torch.Tensor | None = None,
    target_feats: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The 3D-supervised baseline: joint MSE (m^2 per coordinate) and joint-velocity MSE,
    plus feature MSE (MDM's simple loss) when features are given. Joints ``(B, T, 17, 3)``."""
    vel_mask = mask[:, 1:].bool() & mask[:, :-1].bool()
    terms = {
        "joints_3d": masked_mse(pred_joints, target_joints, mask),
        "vel_3d": masked_mse(pred_joints.diff(dim=1), target_joints.diff(dim=1), vel_mask),
    }
    if pred_feats is not None and target_feats is not None:
        terms["x0_mse"] = masked_mse(pred_feats, target_feats, mask)
    return terms


def rigid_bone_loss(joints: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How much the rigid bones (``skeleton.RIGID_BONES``) change length over each window:
    the squared coefficient of variation over valid frames, averaged over bones and samples.
    A prior that needs no 3D (a body keeps its bones), for 2D-only training; ``joints``
    ``(B, T, 17, 3)``, ``mask`` ``(B, T)``."""
    child, parent = (
        torch.tensor(ix, device=joints.device) for ix in zip(*RIGID_BONES, strict=True)
    )
    lengths = (joints[:, :, child] - joints[:, :, parent]).norm(dim=-1)  # (B, T, bones)
    m = mask[..., None].to(lengths.dtype)
    n = m.sum(1).clamp(min=1.0)
    mean = (lengths * m).sum(1) / n  # (B, bones)
    var = ((lengths - mean[:, None]) ** 2 * m).sum(1) / n
    return (var / mean.detach().clamp(min=1e-3) ** 2).mean()


def total_loss(
    terms: Mapping[str, torch.Tensor], weights: Mapping[str, float] = DEFAULT_WEIGHTS
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``sum_k weights[k] * terms[k]`` and a log of every term, raw and weighted (``w_*``),
    as detached tensors (convert when logging, so a GPU step does not sync per term)."""
    missing = sorted(set(weights) - set(terms))
    if missing:
        raise ValueError(f"weights name unknown terms {missing}; terms are {sorted(terms)}")
    total = sum((w * terms[k] for k, w in weights.items() if w != 0), torch.zeros(()))
    logs = {k: v.detach() for k, v in terms.items()}
    logs.update({f"w_{k}": w * terms[k].detach() for k, w in weights.items()})
    logs["total"] = total.detach()
    return total, logs
