"""Gaussian diffusion as weightless scheduler objects, apart from the denoising network.

One ``DDPMScheduler`` or ``DDIMScheduler`` both noises clean samples for training
(``add_noise``, q_sample) and steps noisy samples back for generation (``step``). The
schedule is computed in float64 by pure functions and kept as float32 tensors whose names
match the math (``sqrt_alphas_cumprod``, ``posterior_mean_coef1``, ...). ``step`` reads the
previous timestep from the scheduler's ``timesteps`` array, never from call-order state, so
any step can be taken at any time (and reconstruction guidance can re-enter the loop).

References: DDPM, Ho et al. 2020 (arXiv 2006.11239); DDIM, Song et al. 2021 (arXiv
2010.02502); cosine schedule, Nichol & Dhariwal 2021 (arXiv 2102.09672).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

from videomdm.models.mdm.config import PREDICTIONS, DiffusionConfig, check_choice

log = logging.getLogger(__name__)

ModelFn = Callable[[torch.Tensor, torch.Tensor, Any, torch.Tensor | None], torch.Tensor]
GuidanceFn = Callable[[torch.Tensor, int], torch.Tensor]


# --- schedules: pure functions, float64 ---------------------------------------------------


def cosine_beta_schedule(num_steps: int, s: float = 0.008) -> np.ndarray:
    """Improved-DDPM eq. 17: alphas_cumprod = cos^2(((t/T + s) / (1 + s)) pi/2), betas from
    their ratios, clipped at 0.999 (the last step otherwise has beta = 1)."""
    x = np.linspace(0, num_steps, num_steps + 1, dtype=np.float64)
    f = np.cos(((x / num_steps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = f / f[0]
    return np.clip(1.0 - alphas_cumprod[1:] / alphas_cumprod[:-1], 0.0, 0.999)


def linear_beta_schedule(num_steps: int) -> np.ndarray:
    """DDPM's linear betas 1e-4 .. 0.02 for 1000 steps, rescaled to ``num_steps``."""
    scale = 1000.0 / num_steps
    return np.linspace(scale * 1e-4, min(scale * 0.02, 0.999), num_steps, dtype=np.float64)


def schedule_arrays(betas: np.ndarray) -> dict[str, np.ndarray]:
    """Every quantity the samplers need, float64, named as in the math (each ``(T,)``)."""
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    # DDPM eq. 7: posterior q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, variance)
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    return {
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": alphas_cumprod_prev,
        "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1.0),
        "posterior_variance": posterior_variance,
        # variance is 0 at t = 0: clip the log to the next value (as in DDPM's code)
        "posterior_log_variance_clipped": np.log(
            np.append(posterior_variance[1], posterior_variance[1:])
        ),
        "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - alphas_cumprod_prev)
        * np.sqrt(alphas)
        / (1.0 - alphas_cumprod),
    }


def _extract(a: torch.Tensor, t: torch.Tensor | int, ndim: int, like: torch.Tensor) -> torch.Tensor:
    """``a[t]`` shaped to broadcast over an ``ndim``-D batch: ``(B,)`` -> ``(B, 1, ...)``."""
    t_idx = torch.as_tensor(t, device=a.device, dtype=torch.long)
    out = a[t_idx].to(device=like.device, dtype=torch.float32)
    return out.reshape(out.shape + (1,) * (ndim - out.ndim))


class StepOutput(NamedTuple):
    prev_sample: torch.Tensor  # x_{t_prev}, same shape as x_t
    pred_x0: torch.Tensor  # the clean-sample estimate used for the step


class Scheduler:
    """Schedule buffers, q_sample and prediction conversion shared by both samplers."""

    # float32 copies of schedule_arrays(), one attribute per name
    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor
    sqrt_recipm1_alphas_cumprod: torch.Tensor
    posterior_variance: torch.Tensor
    posterior_log_variance_clipped: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor

    def __init__(self, config: DiffusionConfig = DiffusionConfig()):
        self.config = config
        n = config.num_train_steps
        if config.schedule == "cosine":
            betas = cosine_beta_schedule(n, config.cosine_s)
        else:
            betas = linear_beta_schedule(n)
        arrays = schedule_arrays(betas)
        self._names = tuple(arrays)
        for name, arr in arrays.items():
            setattr(self, name, torch.tensor(arr, dtype=torch.float32))
        self.timesteps = torch.arange(n - 1, -1, -1)  # (S,), descending; samplers may subsample

    @property
    def num_train_steps(self) -> int:
        return self.config.num_train_steps

    def to(self, device: torch.device | str) -> Scheduler:
        """Move the schedule buffers (float32) to ``device``; returns self."""
        for name in self._names:
            setattr(self, name, getattr(self, name).to(device))
        return self

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q_sample (DDPM eq. 4): sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, in fp32.

        ``x0``/``noise`` ``(B, ...)``, ``t`` ``(B,)`` integer steps in [0, num_train_steps).
        """
        x0f, nf = x0.float(), noise.float()
        return (
            _extract(self.sqrt_alphas_cumprod, t, x0.ndim, x0f) * x0f
            + _extract(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim, x0f) * nf
        )

    def convert(
        self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int, src: str, dst: str
    ) -> torch.Tensor:
        """Convert a prediction between ``x0``, ``epsilon`` and ``v`` (DDPM eq. 4 solved for
        each; v = sqrt(abar) eps - sqrt(1 - abar) x0, Salimans & Ho 2022)."""
        for kind in (src, dst):
            check_choice("prediction kind", kind, PREDICTIONS)
        if src == dst:
            return output
        nd = x_t.ndim
        sa = _extract(self.sqrt_alphas_cumprod, t, nd, x_t)
        s1 = _extract(self.sqrt_one_minus_alphas_cumprod, t, nd, x_t)
        if src == "epsilon":  # x0 = x_t / sqrt(abar) - sqrt(1/abar - 1) eps
            x0 = (
                _extract(self.sqrt_recip_alphas_cumprod, t, nd, x_t) * x_t
                - _extract(self.sqrt_recipm1_alphas_cumprod, t, nd, x_t) * output
            )
        elif src == "v":
            x0 = sa * x_t - s1 * output
        else:
            x0 = output
        if dst == "x0":
            return x0
        if dst == "v":  # v = (sqrt(abar) x_t - x0) / sqrt(1 - abar)
            return (sa * x_t - x0) / s1
        # eps = (x_t / sqrt(abar) - x0) / sqrt(1/abar - 1)
        return (_extract(self.sqrt_recip_alphas_cumprod, t, nd, x_t) * x_t - x0) / _extract(
            self.sqrt_recipm1_alphas_cumprod, t, nd, x_t
        )

    def _x0_eps(self, output: torch.Tensor, x_t: torch.Tensor, t: int) -> tuple[torch.Tensor, ...]:
        pred = self.config.prediction
        return self.convert(output, x_t, t, pred, "x0"), self.convert(
            output, x_t, t, pred, "epsilon"
        )

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        """One reverse step from ``x_t``; implemented by each sampler."""
        raise NotImplementedError

    def prev_timestep(self, t: int) -> int:
        """The step after ``t`` in ``timesteps`` (-1 after the last)."""
        idx = (self.timesteps == int(t)).nonzero()
        if idx.numel() == 0:
            raise ValueError(
                f"t={t} is not in this scheduler's timesteps {self.timesteps.tolist()}"
            )
        i = int(idx[0, 0]) + 1
        return int(self.timesteps[i]) if i < len(self.timesteps) else -1


class DDPMScheduler(Scheduler):
    """Ancestral sampling over every training step (DDPM Algorithm 2)."""

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        """One reverse step ``x_t -> x_{t-1}``."""
        # 1. clean-sample estimate from the model's output (DDPM eq. 15 when it predicts eps)
        x0, _ = self._x0_eps(model_output, x_t, t)
        # 2. posterior mean mu~_t(x_t, x0) (DDPM eq. 7)
        nd = x_t.ndim
        mean = (
            _extract(self.posterior_mean_coef1, t, nd, x_t) * x0
            + _extract(self.posterior_mean_coef2, t, nd, x_t) * x_t
        )
        # 3. add posterior noise sigma_t z, none at the last step (Algorithm 2, line 4)
        if t > 0:
            z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            log_var = _extract(self.posterior_log_variance_clipped, t, nd, x_t)
            mean = mean + torch.exp(0.5 * log_var) * z
        return StepOutput(mean, x0)


class DDIMScheduler(Scheduler):
    """DDIM on a subsequence of the training steps; ``eta = 0`` is deterministic."""

    def __init__(
        self,
        config: DiffusionConfig = DiffusionConfig(),
        num_inference_steps: int | None = None,
        eta: float = 0.0,
    ):
        super().__init__(config)
        n = config.num_train_steps
        steps = n if num_inference_steps is None else num_inference_steps
        if not 1 <= steps <= n:
            raise ValueError(f"num_inference_steps must be in [1, {n}], got {steps}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.eta = eta
        # "trailing" spacing: always start at the last training step (pure noise)
        ts = np.round(np.arange(n, 0, -n / steps)).astype(np.int64) - 1
        self.timesteps = torch.as_tensor(np.unique(ts)[::-1].copy())

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        """One reverse step ``x_t -> x_{t_prev}``, ``t_prev`` read from ``timesteps``."""
        # 1. previous step from the schedule array; abar(-1) = 1 (the clean sample)
        t_prev = self.prev_timestep(t)
        nd = x_t.ndim
        a_t = _extract(self.alphas_cumprod, t, nd, x_t)
        a_prev = (
            _extract(self.alphas_cumprod, t_prev, nd, x_t)
            if t_prev >= 0
            else (torch.ones_like(a_t))
        )
        # 2. predicted x0 and eps (DDIM eq. 9)
        x0, eps = self._x0_eps(model_output, x_t, t)
        # 3. sigma_t(eta) (DDIM eq. 16)
        sigma = self.eta * torch.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        # 4. direction pointing to x_t, and x_{t_prev} (DDIM eq. 12)
        direction = torch.sqrt((1 - a_prev - sigma**2).clamp(min=0.0)) * eps
        prev = torch.sqrt(a_prev) * x0 + direction
        if self.eta > 0 and t_prev >= 0:
            z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            prev = prev + sigma * z
        return StepOutput(prev, x0)


def make_scheduler(
    kind: str,
    config: DiffusionConfig = DiffusionConfig(),
    num_inference_steps: int | None = None,
    eta: float = 0.0,
) -> Scheduler:
    """``"ddpm"`` or ``"ddim"`` scheduler by name."""
    if kind == "ddpm":
        return DDPMScheduler(config)
    if kind == "ddim":
        return DDIMScheduler(config, num_inference_steps, eta)
    raise ValueError(f"scheduler kind must be one of ('ddpm', 'ddim'), got {kind!r}")


def cfg_combine(out_cond: torch.Tensor, out_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): uncond + scale * (cond - uncond)."""
    return out_uncond + scale * (out_cond - out_uncond)


def _guided_output(
    model_fn: ModelFn, x: torch.Tensor, t: int, cond: Any, guidance_scale: float
) -> torch.Tensor:
    """Model output at step ``t``, CFG-combined; cond and uncond run as one doubled batch."""
    b = x.shape[0]
    t_b = torch.full((b,), t, device=x.device, dtype=torch.long)
    if cond is None or guidance_scale == 1.0:
        return model_fn(x, t_b, cond, None)
    cond2 = torch.cat([cond, cond]) if isinstance(cond, torch.Tensor) else list(cond) * 2
    drop = torch.arange(2 * b, device=x.device) >= b  # (2B,) second half unconditional
    out = model_fn(torch.cat([x, x]), torch.cat([t_b, t_b]), cond2, drop)
    return cfg_combine(out[:b], out[b:], guidance_scale)


@torch.no_grad()
def sample(
    model_fn: ModelFn,
    shape: tuple[int, ...],
    scheduler: Scheduler,
    guidance_scale: float = 1.0,
    cond: Any = None,
    guidance_fn: GuidanceFn | None = None,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,  # noqa: N803
    device: torch.device | str = "cpu",
    posterior_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
    posterior_scale: float = 0.0,
    posterior_max: float = 0.0,
) -> torch.Tensor:
    """Generate ``shape`` (e.g. ``(B, T, F)``) from noise by running ``scheduler``'s steps.

    ``model_fn(x_t (B, ...), t (B,), cond, drop_cond (B,) bool | None)`` returns the network
    output (of ``scheduler.config.prediction`` kind); ``cond`` is a tensor ``(B, ...)`` or a
    list (labels) and ``None`` means unconditional. ``guidance_fn(x0_hat, t) -> x0_hat``
    edits each step's clean estimate (reprojection guidance, ray projection); it runs with
    gradients enabled so it may differentiate (so do not call ``sample`` under
    ``torch.inference_mode`` with a hook). ``posterior_loss(x0_hat) -> (B,)`` turns on
    diffusion posterior sampling (Chung et al. 2023): the model runs with gradients, and each
    step's x_{t-1} also moves by ``-posterior_scale * d loss / d x_t / sqrt(loss)``, the
    gradient taken through the network; with ``posterior_max`` > 0 that move's RMS is capped
    at ``posterior_max`` times the step's noise level sqrt(1 - abar_t) (a trust region: a
    model that reads x_t has a large Jacobian at high noise, where an uncapped move
    diverged). Returns x_0 ``shape``.
    """
    x = torch.randn(shape, generator=generator, device=device) if x_T is None else x_T.clone()
    pred = scheduler.config.prediction
    for t_tensor in scheduler.timesteps:
        t = int(t_tensor)
        shift = None  # the DPS move of x_{t-1}, when posterior_loss is given
        if posterior_loss is None:
            out = _guided_output(model_fn, x, t, cond, guidance_scale)
        else:
            with torch.enable_grad():
                x_in = x.detach().requires_grad_(True)
                out = _guided_output(model_fn, x_in, t, cond, guidance_scale)
                loss = posterior_loss(scheduler.convert(out, x_in, t, pred, "x0"))  # (B,)
                (grad,) = torch.autograd.grad(loss.sum(), x_in)
            norm = loss.detach().sqrt().clamp(min=1e-6).reshape((-1,) + (1,) * (x.ndim - 1))
            shift = torch.nan_to_num(posterior_scale * grad / norm, nan=0.0, posinf=0.0, neginf=0.0)
            if posterior_max > 0:
                rms = shift.square().mean(dim=tuple(range(1, x.ndim)), keepdim=True).sqrt()
                cap = posterior_max * float(scheduler.sqrt_one_minus_alphas_cumprod[t])
                shift = shift * (cap / rms.clamp(min=1e-12)).clamp(max=1.0)
            out = out.detach()
        if guidance_fn is not None:
            x0 = scheduler.convert(out, x, t, pred, "x0")
            with torch.enable_grad():
                x0 = guidance_fn(x0, t)
            out = scheduler.convert(x0.detach(), x, t, "x0", pred)
        x = scheduler.step(out, t, x, generator=generator).prev_sample
        if shift is not None:
            x = x - shift
    return x
