"""Sampling a trained VideoMDM: generation from a condition, reconstruction of a video clip.

Reconstruction samples with the clip's keypoints as guidance: at every denoising step the
clean estimate x0_hat is moved by a few Adam steps on the depth-weighted reprojection loss
in the window's camera (reconstruction guidance), and the sampler continues from the
corrected x0_hat. It can start from pure noise (``strength=1``) or, SDEdit-style, from the
lifter's motion noised part of the way (``strength < 1``), which keeps the lifter's depth
where the 2D is silent about it. Long clips are cut into windows of the training length,
all sampled as one batch.
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from videomdm.models.mdm.config import DenoiserConfig, DiffusionConfig, GuidanceConfig, TrainConfig
from videomdm.models.mdm.data import canonical_camera
from videomdm.models.mdm.denoiser import Denoiser, autocast
from videomdm.models.mdm.losses import reprojection_loss
from videomdm.models.mdm.schedulers import DDIMScheduler, sample
from videomdm.models.motion.features import (
    Normalizer,
    features_to_joints,
    joints_to_features,
    rigid_features,
)
from videomdm.models.motion.layout import FEATURE_DIM

log = logging.getLogger(__name__)


def _model_fn(model: nn.Module, mask: torch.Tensor | None = None, amp: str = "none"):
    def fn(x, t, cond, drop):
        m = None if mask is None else torch.cat([mask] * (x.shape[0] // mask.shape[0]))
        with autocast(amp, x.device):
            return model(x, t, cond, m, drop).float()

    return fn


@torch.no_grad()
def generate(
    model: Denoiser,
    norm: Normalizer,
    diffusion_cfg: DiffusionConfig,
    cond: torch.Tensor | None,
    n: int,
    n_frames: int,
    steps: int = 50,
    guidance_scale: float = 2.5,
    seed: int = 0,
    amp: str = "bf16",
) -> np.ndarray:
    """``n`` motions of ``n_frames`` from noise: canonical joints ``(n, T, 17, 3)`` metres.
    ``cond`` ``(n, C)`` (or ``(n,)`` labels; None: unconditional) with classifier-free
    guidance ``guidance_scale``; DDIM with ``steps`` steps; the denoiser under ``amp``
    autocast where the device has bf16 (the sampler's arithmetic stays fp32)."""
    device = next(model.parameters()).device
    sched = DDIMScheduler(diffusion_cfg, min(steps, diffusion_cfg.num_train_steps)).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    z = sample(
        _model_fn(model, amp=amp),
        (n, n_frames, model.cfg.n_feats),
        sched,
        guidance_scale,
        None if cond is None else cond.to(device),
        guidance_fn=_rigid_fn(norm) if diffusion_cfg.rigid_bones else None,
        generator=gen,
        device=device,
    )
    return features_to_joints(norm.denormalize(z)).cpu().numpy()


def dps_scale(cfg: GuidanceConfig, model: DenoiserConfig) -> float:
    """``cfg.dps_scale``, or the model's default: 3 with a skip (it reads x_t), else 10."""
    if cfg.dps_scale is not None:
        return cfg.dps_scale
    return 10.0 if model.skip == "none" else 3.0


def _rigid_fn(norm: Normalizer, mask: torch.Tensor | None = None):
    """x0_hat (normalised) -> the same with rigid bones (``DiffusionConfig.rigid_bones``)."""

    def fn(z0: torch.Tensor, step: int) -> torch.Tensor:
        with torch.no_grad():
            return norm.normalize(rigid_features(norm.denormalize(z0), mask))

    return fn


class Windows(NamedTuple):
    """A clip cut into windows of the training length, each with its canonical camera."""

    starts: list[int]  # first frame of each window
    ends: list[int]  # one past the last
    x0: torch.Tensor  # (B, W, F) raw features of the initial motion
    R: torch.Tensor  # (B, 3, 3) canonical -> camera  # noqa: N815
    t: torch.Tensor  # (B, 3)
    u: torch.Tensor  # (B, W, 17, 2)
    conf: torch.Tensor  # (B, W, 17)
    mask: torch.Tensor  # (B, W) True on real frames


def cut_windows(
    init_joints: np.ndarray,
    u: np.ndarray,
    conf: np.ndarray,
    R: np.ndarray,  # noqa: N803
    t: np.ndarray,
    window: int,
    fps: float,
) -> Windows:
    """Windows of ``window`` frames (a 1-frame tail joins the previous one) of a clip:
    ``init_joints`` ``(T, 17, 3)`` world, ``u`` ``(T, 17, 2)``, ``conf`` ``(T, 17)``."""
    n = len(init_joints)
    starts = list(range(0, n, window))
    if len(starts) > 1 and n - starts[-1] < 2:
        starts.pop()
    ends = starts[1:] + [n]
    w, b = max(e - s for s, e in zip(starts, ends, strict=True)), len(starts)
    x0 = torch.zeros(b, w, FEATURE_DIM)
    rs, ts = torch.zeros(b, 3, 3), torch.zeros(b, 3)
    uu, cc = torch.zeros(b, w, 17, 2), torch.zeros(b, w, 17)
    mask = torch.zeros(b, w, dtype=torch.bool)
    for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
        j = np.asarray(init_joints[s:e], np.float64)
        x0[k, : e - s] = torch.from_numpy(joints_to_features(j, fps))
        rc, tc = canonical_camera(j, R, t)
        rs[k], ts[k] = torch.from_numpy(rc), torch.from_numpy(tc)
        uu[k, : e - s], cc[k, : e - s] = torch.from_numpy(u[s:e]), torch.from_numpy(conf[s:e])
        mask[k, : e - s] = True
    return Windows(starts, ends, x0, rs, ts, uu, cc, mask)


def loss_2d(z: torch.Tensor, norm: Normalizer, win: Windows, loss: TrainConfig) -> torch.Tensor:
    """The training loss's weighted 2D terms for normalised features ``z`` ``(B, W, F)``,
    per window ``(B,)``."""
    joints = features_to_joints(norm.denormalize(z))
    terms = reprojection_loss(
        joints,
        win.R,
        win.t,
        win.u,
        win.conf,
        win.mask,
        loss.depth_power,
        loss.min_depth,
        reduction="none",
    )
    return loss.lambda_pos * terms["reproj_pos"] + loss.lambda_vel * terms["reproj_vel"]


def _fit_2d(z, norm, win: Windows, loss: TrainConfig, cfg: GuidanceConfig, iters: int):
    """Move normalised features ``z`` ``(B, W, F)`` towards the keypoints."""
    z = z.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.lr)
    for _ in range(iters):
        total = loss_2d(z, norm, win, loss).sum()
        opt.zero_grad()
        total.backward()
        opt.step()
    return z.detach()


def reconstruct(
    model: Denoiser,
    norm: Normalizer,
    diffusion_cfg: DiffusionConfig,
    loss: TrainConfig,
    win: Windows,
    cond: torch.Tensor | None = None,
    cfg: GuidanceConfig = GuidanceConfig(),
    seed: int = 0,
) -> np.ndarray:
    """Canonical joints ``(B, W, 17, 3)`` of each window of ``win`` sampled with its keypoints
    as guidance (``cfg``), under the training loss's 2D terms (``loss``); ``cond`` ``(C,)``
    one condition for the clip."""
    device = next(model.parameters()).device
    win = Windows(win.starts, win.ends, *(x.to(device) for x in win[2:]))
    z_init = norm.normalize(win.x0)
    sched = DDIMScheduler(diffusion_cfg, min(cfg.steps, diffusion_cfg.num_train_steps)).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    noise = torch.randn(z_init.shape, generator=gen, device=device)
    x_T = noise  # noqa: N806
    if cfg.strength < 1.0:  # SDEdit: from the initial motion noised part of the way
        keep = max(1, round(cfg.strength * len(sched.timesteps)))
        sched.timesteps = sched.timesteps[-keep:]
        t0 = sched.timesteps[:1].expand(z_init.shape[0]).to(device)
        x_T = sched.add_noise(z_init, noise, t0)  # noqa: N806
    conds = None if cond is None else cond.to(device)[None].expand(z_init.shape[0], -1)
    model.eval()
    dps = cfg.kind == "dps"
    if dps and diffusion_cfg.prediction != "x0":
        # measured: a 2000-step v-prediction model diverged under DPS (MPJPE 1e5-1e6 mm)
        log.warning(
            "DPS guidance was tuned for x0-prediction models; this one predicts "
            "%r: consider --guidance adam",
            diffusion_cfg.prediction,
        )

    rigid = _rigid_fn(norm, win.mask) if diffusion_cfg.rigid_bones else None
    fit = not dps and cfg.iters

    def guide(z0_hat: torch.Tensor, step: int) -> torch.Tensor:
        if fit:
            z0_hat = _fit_2d(z0_hat, norm, win, loss, cfg, cfg.iters)
        return z0_hat if rigid is None else rigid(z0_hat, step)

    z = sample(
        _model_fn(model, win.mask, cfg.amp),
        tuple(z_init.shape),
        sched,
        cfg.guidance_scale,
        conds,
        guidance_fn=guide if fit or rigid is not None else None,
        generator=gen,
        x_T=x_T,
        device=device,
        posterior_loss=functools.partial(loss_2d, norm=norm, win=win, loss=loss) if dps else None,
        posterior_scale=dps_scale(cfg, model.cfg),
        posterior_max=cfg.dps_max_step,
    )
    if not dps and cfg.final_iters:
        z = _fit_2d(z, norm, win, loss, cfg, cfg.final_iters)
        z = z if rigid is None else rigid(z, 0)
    return features_to_joints(norm.denormalize(z)).cpu().numpy().astype(np.float64)


def uncut_windows(canon: np.ndarray, win: Windows, R: np.ndarray, t: np.ndarray) -> np.ndarray:  # noqa: N803
    """Canonical window joints ``(B, W, 17, 3)`` back to one motion ``(T, 17, 3)`` in the
    world of the camera ``R, t`` they were cut with."""
    out = np.zeros((win.ends[-1], 17, 3))
    for k, (s, e) in enumerate(zip(win.starts, win.ends, strict=True)):
        rk, tk = win.R[k].cpu().numpy().astype(np.float64), win.t[k].cpu().numpy()
        cam = canon[k, : e - s] @ rk.T + tk
        out[s:e] = (cam - t) @ R  # camera -> world: R^T (x - t)
    return out.astype(np.float32)
