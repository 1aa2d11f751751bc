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
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from videomdm.models.mdm.data import canonical_camera
from videomdm.models.mdm.denoiser import Denoiser, autocast
from videomdm.models.mdm.losses import DEFAULT_WEIGHTS, reprojection_loss
from videomdm.models.mdm.schedulers import DDIMScheduler, DiffusionConfig, sample
from videomdm.models.motion.features import Normalizer, features_to_joints, joints_to_features

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
        generator=gen,
        device=device,
    )
    return features_to_joints(norm.denormalize(z)).cpu().numpy()


GUIDANCE_KINDS = ("dps", "adam")


@dataclass(frozen=True)
class GuidanceConfig:
    """How reconstruction follows the keypoints.

    ``dps`` (diffusion posterior sampling, Chung et al. 2023): after each DDIM step, x_t moves
    down the gradient of the 2D loss of x0_hat(x_t) *through the denoiser*, by ``dps_scale``
    / sqrt(loss) per window; the network's Jacobian keeps the correction on the motions it
    knows, so depth and smoothness come from the prior. ``adam``: ``iters`` Adam steps on
    x0_hat itself per step, and ``final_iters`` on the result; it fits the 2D more tightly but
    moves every feature channel, the unseen ones too (jitter).
    """

    kind: str = "dps"  # one of GUIDANCE_KINDS
    strength: float = 1.0  # 1: start from noise; < 1: from the lifter's motion noised this far
    steps: int = 50  # DDIM steps over the full schedule
    dps_scale: float = 10.0  # dps: step on x_t, normalised features per sqrt(loss)
    iters: int = 10  # adam: steps on x0_hat per denoising step
    lr: float = 0.05  # adam: in normalised feature units
    final_iters: int = 50  # adam: extra refinement of the last x0
    guidance_scale: float = 1.0  # classifier-free guidance on the condition
    depth_power: float = 2.0
    min_depth: float = 0.1
    amp: str = "bf16"  # autocast for the denoiser (the guidance's own gradients stay fp32)

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {self.strength}")
        if self.kind not in GUIDANCE_KINDS:
            raise ValueError(f"guidance kind must be one of {GUIDANCE_KINDS}, got {self.kind!r}")


def _loss_2d(z, norm, R, t, u, conf, mask, cfg: GuidanceConfig) -> torch.Tensor:  # noqa: N803
    """Weighted reprojection loss of normalised features ``z`` ``(B, W, F)``, per window."""
    joints = features_to_joints(norm.denormalize(z))
    terms = reprojection_loss(
        joints, R, t, u, conf, mask, cfg.depth_power, cfg.min_depth, reduction="none"
    )
    return (
        DEFAULT_WEIGHTS["reproj_pos"] * terms["reproj_pos"]
        + DEFAULT_WEIGHTS["reproj_vel"] * terms["reproj_vel"]
    )


def _fit_2d(z, norm, R, t, u, conf, mask, cfg: GuidanceConfig, iters: int):  # noqa: N803
    """Move normalised features ``z`` ``(B, W, F)`` towards the keypoints."""
    z = z.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.lr)
    for _ in range(iters):
        loss = _loss_2d(z, norm, R, t, u, conf, mask, cfg).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return z.detach()


def reconstruct(
    model: Denoiser,
    norm: Normalizer,
    diffusion_cfg: DiffusionConfig,
    init_joints: np.ndarray,  # (T, 17, 3) world: the lifter's motion
    u: np.ndarray,  # (T, 17, 2) normalised keypoints
    conf: np.ndarray,  # (T, 17)
    R: np.ndarray,  # (3, 3) world -> camera  # noqa: N803
    t: np.ndarray,  # (3,)
    cond: torch.Tensor | None = None,  # (C,) one condition for the clip
    window: int = 60,
    cfg: GuidanceConfig = GuidanceConfig(),
    seed: int = 0,
    fps: float = 30.0,
) -> np.ndarray:
    """A 3D motion ``(T, 17, 3)`` in the same world frame as ``init_joints`` whose projection
    through ``R, t`` follows the keypoints; windows of ``window`` frames."""
    n = len(init_joints)
    starts = list(range(0, n, window))
    if len(starts) > 1 and n - starts[-1] < 2:  # a 1-frame tail joins the previous window
        starts.pop()
    ends = starts[1:] + [n]
    w = max(e - s for s, e in zip(starts, ends, strict=True))
    b = len(starts)
    device = next(model.parameters()).device
    x0 = torch.zeros(b, w, model.cfg.n_feats)
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
    rs, ts, uu, cc, mask = (x.to(device) for x in (rs, ts, uu, cc, mask))
    z = _sample_guided(
        model,
        norm,
        diffusion_cfg,
        norm.normalize(x0.to(device)),
        rs,
        ts,
        uu,
        cc,
        mask,
        cond,
        cfg,
        seed,
    )
    canon = features_to_joints(norm.denormalize(z)).cpu().numpy().astype(np.float64)
    out = np.zeros((n, 17, 3))
    for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
        cam = canon[k, : e - s] @ rs[k].cpu().numpy().T.astype(np.float64) + ts[k].cpu().numpy()
        out[s:e] = (cam - t) @ R  # camera -> world: R^T (x - t)
    return out.astype(np.float32)


def _sample_guided(model, norm, diffusion_cfg, z_init, R, t, u, conf, mask, cond, cfg, seed):  # noqa: N803
    device = z_init.device
    sched = DDIMScheduler(diffusion_cfg, min(cfg.steps, diffusion_cfg.num_train_steps)).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    noise = torch.randn(z_init.shape, generator=gen, device=device)
    if cfg.strength < 1.0:
        keep = max(1, round(cfg.strength * len(sched.timesteps)))
        sched.timesteps = sched.timesteps[-keep:]
        t0 = sched.timesteps[:1].expand(z_init.shape[0]).to(device)
        x_T = sched.add_noise(z_init, noise, t0)  # noqa: N806
    else:
        x_T = noise  # noqa: N806
    conds = None if cond is None else cond.to(device)[None].expand(z_init.shape[0], -1)

    model.eval()
    dps = cfg.kind == "dps"
    if dps and diffusion_cfg.prediction != "x0":
        # measured: a 2000-step v-prediction model diverged under DPS (MPJPE 1e5-1e6 mm)
        log.warning("DPS guidance was tuned for x0-prediction models; this one predicts "
                    "%r: consider --guidance adam", diffusion_cfg.prediction)  # fmt: skip

    def guide(z0_hat: torch.Tensor, step: int) -> torch.Tensor:
        return _fit_2d(z0_hat, norm, R, t, u, conf, mask, cfg, cfg.iters)

    z = sample(
        _model_fn(model, mask, cfg.amp),
        tuple(z_init.shape),
        sched,
        cfg.guidance_scale,
        conds,
        guidance_fn=guide if not dps and cfg.iters else None,
        generator=gen,
        x_T=x_T,
        device=device,
        posterior_loss=functools.partial(
            _loss_2d, norm=norm, R=R, t=t, u=u, conf=conf, mask=mask, cfg=cfg
        ) if dps else None,
        posterior_scale=cfg.dps_scale,
    )  # fmt: skip
    if dps or not cfg.final_iters:
        return z
    return _fit_2d(z, norm, R, t, u, conf, mask, cfg, cfg.final_iters)
