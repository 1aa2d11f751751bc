"""MDM-style denoiser: a transformer encoder that predicts the clean motion x0.

Tokens are ``[c, x_1 .. x_T]``: ``c`` is one condition token, the sum of the diffusion-step
embedding and the condition embedding (text from a 384-d sentence embedding, or a label
from a vocabulary); the frames are linear projections of the noisy features. Fixed sinusoidal
positions are added to all tokens, the encoder runs with a key padding mask for clips
shorter than the batch, and the frame tokens are projected back to features.

For classifier-free guidance the condition is replaced by a learned null embedding with
probability ``cond_drop_prob`` during training and wherever ``drop_cond`` says so.

With ``skip="learned"`` (a research option, issue 17) the output is
``a(t) * S(x_t) + F(x_t, t, c)``: a learned per-(step, channel) gain on the (optionally
temporally smoothed) input, initialised at sqrt(abar_t), plus the transformer, whose output
projection starts at zero. A 2D-only model trained without it ignores x_t; with it, it reads
x_t from the first step (the ladder, ``evaluation.ladder``).

With ``skip="gaussian"`` the output is ``G(x_t, t) + c(t) * F(x_t, t, c)``: ``G`` the exact
posterior mean under a Gaussian model of the training motions (``prior.py``; its statistics
are buffers that ``Trainer`` fits with ``set_prior``) and ``c(t)`` the root of the error it
leaves (EDM's c_skip and c_out with the data's covariance in place of one variance). Until
the statistics are set the prior is white unit-variance noise (G = sqrt(abar) x_t).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math

import torch
from torch import nn

from videomdm.models.mdm.config import AMP_DTYPES, DenoiserConfig, DiffusionConfig, check_choice
from videomdm.models.mdm.prior import GaussianDenoiser
from videomdm.models.mdm.schedulers import Scheduler

log = logging.getLogger(__name__)


def sinusoidal_table(length: int, width: int) -> torch.Tensor:
    """Transformer positional encoding (Vaswani et al. 2017): ``(length, width)``."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table.float()


class TimestepEmbedder(nn.Module):
    """Diffusion step -> sinusoidal code -> MLP, as in MDM."""

    table: torch.Tensor  # (max_steps, D) buffer

    def __init__(self, width: int, max_steps: int = 1024):
        super().__init__()
        self.register_buffer("table", sinusoidal_table(max_steps, width), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.table[t])  # (B,) -> (B, D)


class ConditionEmbedder(nn.Module):
    """Text embedding or label id -> ``(B, D)``, with a learned null embedding for CFG."""

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.mode = cfg.cond_mode
        self.proj: nn.Module | None = None
        if cfg.cond_mode == "text":
            self.proj = nn.Linear(cfg.text_dim, cfg.width)
        elif cfg.cond_mode == "label":
            self.proj = nn.Embedding(cfg.num_labels, cfg.width)
        self.null = nn.Parameter(torch.zeros(cfg.width))

    def forward(self, cond: torch.Tensor | None, drop: torch.Tensor) -> torch.Tensor:
        """``cond`` ``(B, text_dim)`` floats or ``(B,)`` label ids (None: unconditional);
        ``drop`` ``(B,)`` bool, True where the null embedding replaces the condition."""
        null = self.null.expand(drop.shape[0], -1)  # (B, D)
        if cond is None or self.proj is None:
            return null
        emb = self.proj(cond)  # (B, D)
        return torch.where(drop[:, None], null.to(emb.dtype), emb)


def autocast(amp: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the denoiser where the device has it (CUDA, or a CPU with bf16
    instructions), else nothing; ``amp`` one of ``AMP_DTYPES``."""
    check_choice("amp", amp, AMP_DTYPES)
    dev = torch.device(device)
    if amp == "none" or (dev.type == "cpu" and not _cpu_bf16()):
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype=torch.bfloat16)


@functools.cache  # asked on every denoiser call; the answer cannot change in a process
def _cpu_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask costs a quarter of the random draws.

    On CPU, ``F.dropout`` draws one Bernoulli sample per element (``bernoulli_``): 23% of a
    paper-preset training step (310 of 1350 ms, torch profiler). Here one 64-bit random word
    gives four 16-bit uniforms, an element is kept when its uniform is above ``p`` (within
    1/65536), and ``torch.where`` applies mask and scale in one pass: 3.7 vs 12.9 ms for a
    (16, 121, 1024) bf16 activation. Same expectation and distribution as ``nn.Dropout``, same
    global generator (so seeding and exact resume work as before); other devices use
    ``F.dropout``, which is fused there.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        if self.p >= 1.0:
            return torch.zeros_like(x)
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
        u16 = words.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
        keep = u16 >= -32768 + round(self.p * 65536)
        return torch.where(keep, x * (1.0 / (1.0 - self.p)), 0.0)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised Gaussian taps ``(2r + 1,)``, r = ceil(3 sigma) (at least 1)."""
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def smooth_time(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, T, F)`` filtered along T by ``kernel`` ``(2r + 1,)``, edges replicated."""
    r, f = (len(kernel) - 1) // 2, x.shape[-1]
    xt = nn.functional.pad(x.transpose(1, 2), (r, r), mode="replicate")  # (B, F, T + 2r)
    w = kernel.to(x).view(1, 1, -1).expand(f, 1, -1)
    return nn.functional.conv1d(xt, w, groups=f).transpose(1, 2)


class Denoiser(nn.Module):
    """x_t ``(B, T, F)``, t ``(B,)`` -> x0_hat ``(B, T, F)``.

    ``diffusion`` only sizes and initialises the learned skip (``cfg.skip``); its number of
    steps must be the schedule the model is trained and sampled with.
    """

    pos: torch.Tensor  # (max_frames + 1, D) buffer
    skip_kernel: torch.Tensor  # (2r + 1,) buffer, only with a smoothed skip
    skip_mask: torch.Tensor  # (S, 1) buffer: 1 where the skip acts, 0 from skip_max_t on
    prior_basis: torch.Tensor  # (F, F) buffer, only with the Gaussian skip
    prior_acov: torch.Tensor  # (F, max_frames) buffer, only with the Gaussian skip
    skip_abar: torch.Tensor  # (S,) buffer, only with the Gaussian skip

    def __init__(self, cfg: DenoiserConfig, diffusion: DiffusionConfig | None = None):
        super().__init__()
        self.cfg = cfg
        self.input_proj = nn.Linear(cfg.n_feats, cfg.width)
        self.time_embed = TimestepEmbedder(cfg.width)
        self.cond_embed = ConditionEmbedder(cfg)
        self.register_buffer(
            "pos", sinusoidal_table(cfg.max_frames + 1, cfg.width), persistent=False
        )
        self.drop = FastDropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            cfg.width,
            cfg.n_heads,
            cfg.ff_dim,
            cfg.dropout,
            activation=cfg.activation,
            batch_first=True,
            norm_first=cfg.norm_first,
        )
        # nested tensors only pay off at inference with much padding, and they warn on norm_first
        self.encoder = nn.TransformerEncoder(
            layer,
            cfg.n_layers,
            norm=nn.LayerNorm(cfg.width) if cfg.norm_first else None,
            enable_nested_tensor=False,
        )
        for lyr in self.encoder.layers:  # the layer's own nn.Dropout modules (not attention's)
            lyr.dropout, lyr.dropout1, lyr.dropout2 = (FastDropout(cfg.dropout) for _ in range(3))
        self.output_proj = nn.Linear(cfg.width, cfg.n_feats)
        self.skip: nn.Parameter | None = None
        if cfg.skip == "learned":
            self._init_skip(cfg, diffusion or DiffusionConfig())
        elif cfg.skip == "gaussian":
            self._init_gaussian(cfg, diffusion or DiffusionConfig())
        log.debug("denoiser with %.2fM parameters", sum(p.numel() for p in self.parameters()) / 1e6)

    def _init_skip(self, cfg: DenoiserConfig, diffusion: DiffusionConfig) -> None:
        if diffusion.prediction != "x0":
            raise ValueError(f"skip='learned' needs x0 prediction, not {diffusion.prediction!r}")
        gain = Scheduler(diffusion).sqrt_alphas_cumprod  # (S,)
        mask = torch.ones_like(gain)
        if cfg.skip_max_t > 0:
            mask[cfg.skip_max_t :] = 0.0
        gain = gain * mask
        self.register_buffer("skip_mask", mask[:, None], persistent=False)
        self.skip = nn.Parameter(gain[:, None].repeat(1, cfg.n_feats))  # (S, F)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)
        if cfg.skip_smoothing > 0:
            kernel = gaussian_kernel(cfg.skip_smoothing)
            self.register_buffer("skip_kernel", kernel, persistent=False)

    def _init_gaussian(self, cfg: DenoiserConfig, diffusion: DiffusionConfig) -> None:
        if diffusion.prediction != "x0":
            raise ValueError(f"skip='gaussian' needs x0 prediction, not {diffusion.prediction!r}")
        abar = Scheduler(diffusion).alphas_cumprod
        self.register_buffer("skip_abar", abar, persistent=False)
        self.register_buffer("prior_basis", torch.eye(cfg.n_feats))
        # until ``set_prior``: white unit-variance features (what normalising aims at), whose
        # posterior mean is sqrt(abar) x_t, EDM's c_skip for unit-variance data
        acov = torch.zeros(cfg.n_feats, cfg.max_frames)
        acov[:, 0] = 1.0
        self.register_buffer("prior_acov", acov)
        self.gaussian = GaussianDenoiser()
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def set_prior(self, basis: torch.Tensor, acov: torch.Tensor) -> None:
        """The Gaussian skip's statistics (``prior.fit_gaussian_prior``)."""
        self.prior_basis.copy_(basis)
        self.prior_acov.zero_()
        self.prior_acov[:, : acov.shape[1]] = acov[:, : self.prior_acov.shape[1]]

    def gaussian_term(
        self, x: torch.Tensor, t: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian skip over each clip's real frames (``mask``: a prefix of each row), in
        float32: the posterior mean ``(B, T, F)`` (0 on padding) and its error scale ``(B,)``."""
        abar, stats = self.skip_abar[t], (self.prior_basis, self.prior_acov)
        with torch.autocast(x.device.type, enabled=False):
            if mask is None or bool(mask.all()):
                return self.gaussian(x, abar, *stats)
            g, scale = torch.zeros_like(x, dtype=torch.float32), x.new_zeros(len(x))
            lengths = mask.sum(dim=1)
            for n in lengths.unique().tolist():
                rows = lengths == n
                g[rows, :n], scale[rows] = self.gaussian(x[rows, :n], abar[rows], *stats)
            return g, scale

    def skip_term(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``a(t) * S(x)`` in float32 (outside autocast): ``(B, T, F)``; 0 without a skip."""
        if self.skip is None:
            return torch.zeros_like(x, dtype=torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            xs = x.float()
            if self.cfg.skip_smoothing > 0:
                xs = smooth_time(xs, self.skip_kernel)
            return (self.skip * self.skip_mask)[t][:, None, :].float() * xs

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        drop_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x`` ``(B, T, F)`` noisy features, ``t`` ``(B,)`` steps, ``cond`` ``(B, 384)`` or
        ``(B,)`` labels, ``mask`` ``(B, T)`` True on real frames (None: all real),
        ``drop_cond`` ``(B,)`` True to force the null condition. Returns ``(B, T, F)``."""
        b, n, _ = x.shape
        if n > self.cfg.max_frames:
            raise ValueError(f"{n} frames exceed max_frames={self.cfg.max_frames}")
        drop = torch.zeros(b, dtype=torch.bool, device=x.device) if drop_cond is None else drop_cond
        if self.training and self.cfg.cond_drop_prob > 0:
            drop = drop | (torch.rand(b, device=x.device) < self.cfg.cond_drop_prob)
        c = self.time_embed(t) + self.cond_embed(cond, drop)  # (B, D)
        tokens = torch.cat([c[:, None], self.input_proj(x)], dim=1)  # (B, 1 + T, D)
        tokens = self.drop(tokens + self.pos[: n + 1])
        pad = None
        if mask is not None:
            # the condition token is always attended to, so no row is fully masked
            pad = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)  # (B, 1 + T)
        h = self.encoder(tokens, src_key_padding_mask=pad)  # (B, 1 + T, D)
        out = self.output_proj(h[:, 1:])  # (B, T, F)
        if self.cfg.skip == "gaussian":
            g, scale = self.gaussian_term(x, t, mask)
            return g + scale[:, None, None] * out.float()
        return out if self.skip is None else out + self.skip_term(x, t)
