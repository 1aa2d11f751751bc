"""VideoMDM training: MDM on rough 3D x0, supervised only by the 2D reprojection of x0_hat.

Per batch (``diffusion_loss``): the window's features x0 (the lifter's rough 3D) are
z-scored, noised to a random step t, and the denoiser predicts x0_hat; x0_hat becomes
canonical joints, is projected through the window's canonical camera and compared with the
keypoints (``losses.reprojection_loss``: depth-weighted, confidence-weighted positions and
velocities). The redundant channels (joint velocities, contacts) never reach the joints;
they are trained to agree with the predicted positions (or, with ray consistency on, with
the positions snapped to the keypoint rays), so no 3D enters the 2D mode.
``supervision="3d"`` trains the same network on the x0 itself (MDM's loss), the baseline.

The ``Trainer`` is nanoGPT-shaped: one config saved in every checkpoint and checked on
resume, AdamW with warm-up, gradient clipping, an EMA copy (``torch.optim.swa_utils``),
bf16 autocast, and DDP when ``world_size > 1`` with no other branching. Every step's batch,
timesteps and noise are drawn from generators seeded by ``(seed, step)`` for the *global*
batch, each rank taking its slice: a resumed run continues exactly, and N ranks of batch B
compute the same loss as one process with batch N * B.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from videomdm.errors import UserError
from videomdm.models.mdm.config import DenoiserConfig, DiffusionConfig, TrainConfig
from videomdm.models.mdm.data import (
    Batch,
    clean_samples,
    make_batch,
    sample_windows,
    training_motion,
)
from videomdm.models.mdm.denoiser import Denoiser, autocast
from videomdm.models.mdm.losses import (
    masked_mse,
    ray_consistency_loss,
    reprojection_loss,
    rigid_bone_loss,
    snap_to_rays,
    supervised_3d_loss,
    total_loss,
)
from videomdm.models.mdm.prior import fit_gaussian_prior
from videomdm.models.mdm.schedulers import Scheduler
from videomdm.models.motion.cameras import world_to_camera
from videomdm.models.motion.features import (
    Normalizer,
    features_to_joints,
    joints_to_features,
    redundant_features,
)
from videomdm.models.motion.layout import redundant_slice
from videomdm.models.motion.sample import MotionSample

log = logging.getLogger(__name__)


def diffusion_loss(
    model: nn.Module,
    scheduler: Scheduler,
    norm: Normalizer,
    batch: Batch,
    t: torch.Tensor,
    noise: torch.Tensor,
    cfg: TrainConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One batch's weighted loss and its logged terms; ``noise`` like x0.

    ``t`` ``(B,)``: x0 noised to t, one prediction. ``t`` ``(B, K)`` (the t* schedule, steps
    decreasing along K): x0 noised to ``t[:, 0]``, then K predictions down a deterministic DDIM
    chain built from each x0_hat (detached between steps), the loss averaged over them.
    """
    z0 = norm.normalize(batch.x0) * batch.mask[..., None]  # (B, W, F), padding zeroed
    chain = t[:, None] if t.ndim == 1 else t
    zt = scheduler.add_noise(z0, noise, chain[:, 0])
    total = torch.zeros((), device=z0.device)
    logs: dict[str, torch.Tensor] = {}
    k = chain.shape[1]
    for i in range(k):
        ti = chain[:, i]
        loss, terms, z0_hat = _denoised_loss(model, scheduler, norm, batch, zt, ti, z0, cfg)
        total = total + loss / k
        logs = {name: logs.get(name, 0.0) + v / k for name, v in terms.items()}
        if i + 1 < k:  # DDIM to the next step from x0_hat and the implied noise
            eps = scheduler.convert(z0_hat, zt, ti, "x0", "epsilon")
            zt = scheduler.add_noise(z0_hat, eps, chain[:, i + 1]).detach()
    return total, logs


def _denoised_loss(model, scheduler, norm, batch: Batch, zt, t, z0, cfg: TrainConfig):
    """The weighted loss of the prediction at (zt, t), its terms, and x0_hat (normalised)."""
    with autocast(cfg.amp, batch.x0.device):
        out = model(zt, t, batch.cond, batch.mask).float()  # (B, W, F)
    z0_hat = scheduler.convert(out, zt, t, scheduler.config.prediction, "x0")
    joints = features_to_joints(norm.denormalize(z0_hat))  # (B, W, 17, 3) canonical
    if cfg.supervision == "3d":
        terms = supervised_3d_loss(joints, batch.joints, batch.mask, z0_hat, z0)
    else:
        terms = _terms_2d(z0_hat, joints, batch, norm, cfg)
    loss, logs = total_loss(terms, cfg.weights())
    return loss, logs, z0_hat


def _terms_2d(z0_hat, joints, batch: Batch, norm: Normalizer, cfg: TrainConfig):
    terms = reprojection_loss(
        joints, batch.R, batch.t, batch.u, batch.conf, batch.mask, cfg.depth_power, cfg.min_depth
    )
    target = joints.detach()
    if cfg.lambda_ray:
        terms |= ray_consistency_loss(
            joints, batch.R, batch.t, batch.u, batch.conf, batch.mask, cfg.min_depth
        )
        target = _snapped(target, batch, cfg.min_depth)
    red = redundant_slice()
    want = norm.normalize(_full(redundant_features(target, cfg.fps), red))[..., red]
    terms["redundant"] = masked_mse(z0_hat[..., red], want, batch.mask)
    if cfg.lambda_bone:
        terms["bone"] = rigid_bone_loss(joints, batch.mask)
    return terms


def _full(red_feats: torch.Tensor, red: slice) -> torch.Tensor:
    """Place the redundant channels in an otherwise zero feature tensor (to normalise them)."""
    out = red_feats.new_zeros(red_feats.shape[:-1] + (red.stop,))
    out[..., red] = red_feats
    return out


def _snapped(joints: torch.Tensor, batch: Batch, min_depth: float) -> torch.Tensor:
    """Canonical joints moved to the nearest point of their keypoint's ray (where observed)."""
    cam = world_to_camera(joints, batch.R[:, None], batch.t[:, None])  # (B, W, 17, 3)
    ok = (batch.conf > 0) & torch.isfinite(batch.u).all(-1) & (cam[..., 2] > min_depth)
    snap = snap_to_rays(cam, torch.nan_to_num(batch.u), min_depth)
    cam = torch.where(ok[..., None], snap, cam)
    return (cam - batch.t[:, None, None]) @ batch.R[:, None]  # R^T (x - t), row vectors


class Trainer:
    """Owns model, EMA, optimiser and data; ``fit`` runs steps, ``state_dict`` resumes."""

    def __init__(
        self,
        samples: list[MotionSample],
        cond: np.ndarray,  # (N, C) one condition row per sample
        model_cfg: DenoiserConfig,
        cfg: TrainConfig,
        diffusion_cfg: DiffusionConfig | None = None,
        norm: Normalizer | None = None,
        device: str | torch.device = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ):
        kept, self.dropped = clean_samples(samples)
        if not kept:
            raise ValueError(f"no usable training samples ({dict(self.dropped)} dropped)")
        kept_ids = {id(k) for k in kept}
        keep = [i for i, s in enumerate(samples) if id(s) in kept_ids]
        # 2D supervision trains on lifted clips; 3D on ground truth
        self.samples = [training_motion(s, cfg, cfg.supervision == "2d") for s in kept]
        self.cond = np.asarray(cond)[keep]
        self.lengths = np.array([len(s.joints) for s in kept])
        self.cfg, self.model_cfg = cfg, model_cfg
        self.diffusion_cfg = diffusion_cfg or DiffusionConfig()
        self.device, self.rank, self.world_size = torch.device(device), rank, world_size
        # z-scores of the motions noised here (smoothed): fitted on the raw lifted motions, the
        # velocity channels' std was the lifter's jitter, 8-16x what is trained on (ladder R3/R4)
        feats = [joints_to_features(s.joints, s.fps) for s in self.samples]
        self.norm = norm or Normalizer.fit(feats)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.raw_model = Denoiser(model_cfg, self.diffusion_cfg)
        if model_cfg.skip == "gaussian":  # the skip's statistics: of the motions noised here
            seqs = [self.norm.normalize(torch.as_tensor(f)) for f in feats]
            self.raw_model.set_prior(*fit_gaussian_prior(seqs, model_cfg.max_frames))
        self.raw_model.to(self.device)
        self.model: nn.Module = self.raw_model
        if world_size > 1:
            self.model = nn.parallel.DistributedDataParallel(self.raw_model)
        self.ema = AveragedModel(
            self.raw_model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True
        )
        self.opt = torch.optim.AdamW(
            self.raw_model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = Scheduler(self.diffusion_cfg).to(self.device)
        # steps per t* bucket (0: no t* schedule); a t* that does not fit fails here
        self.t_star_bucket = _bucket_size(cfg, self.scheduler.num_train_steps) if cfg.t_star else 0
        self.step = 0
        self.history: list[dict[str, float]] = []

    def batch_at(self, step: int) -> tuple[Batch, torch.Tensor, torch.Tensor]:
        """This rank's slice of step ``step``'s global batch, timesteps and noise."""
        cfg, n = self.cfg, self.cfg.batch_size * self.world_size
        rng = np.random.default_rng([cfg.seed, step])
        idx, starts = sample_windows(self.lengths, n, cfg.window, rng)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        t = self._timesteps(n, gen)
        noise = torch.randn((n, cfg.window, self.model_cfg.n_feats), generator=gen)
        mine = slice(self.rank * cfg.batch_size, (self.rank + 1) * cfg.batch_size)
        batch = make_batch(self.samples, self.cond, idx[mine], starts[mine], cfg.window)
        return batch.to(self.device), t[mine].to(self.device), noise[mine].to(self.device)

    def _timesteps(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``(n,)`` uniform steps; with the t* schedule (``TrainConfig.t_star``) a share of
        batches instead get ``(n, K)`` chains, one random step in each of K equal buckets below
        the effective t*, decreasing (the release's "multistep_b1_e1_d1", DESIGN.md), and the
        other batches a step above it."""
        steps, size, k = self.scheduler.num_train_steps, self.t_star_bucket, self.cfg.t_star_buckets
        if not size:
            return torch.randint(0, steps, (n,), generator=gen)
        if torch.rand((), generator=gen) >= size * k / steps:  # the release's share: t*_eff / T
            return torch.randint(size * k, steps, (n,), generator=gen)
        return torch.arange(k - 1, -1, -1) * size + torch.randint(0, size, (n, k), generator=gen)

    def lr_at(self, step: int) -> float:
        return self.cfg.lr * min(1.0, (step + 1) / max(1, self.cfg.warmup_steps))

    def train_step(self) -> dict[str, float]:
        """One optimiser step; returns the logged terms (floats) and the gradient norm."""
        cfg = self.cfg
        batch, t, noise = self.batch_at(self.step)
        torch.manual_seed(hash((cfg.seed, self.step, self.rank)) % 2**62)  # dropout, cond drop
        self.model.train()
        loss, logs = diffusion_loss(self.model, self.scheduler, self.norm, batch, t, noise, cfg)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        if torch.isfinite(gnorm):  # a non-finite gradient skips the update, never the run
            self.opt.step()
            self.ema.update_parameters(self.raw_model)
        self.step += 1
        out = {k: float(v) for k, v in logs.items()} | {"grad_norm": float(gnorm)}
        return out | {"step": float(self.step)}

    def fit(
        self,
        steps: int | None = None,
        on_checkpoint: Callable[[Trainer], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, float]]:
        """Train until ``steps`` (default ``cfg.steps``) total steps; checkpoints on the way."""
        end = self.cfg.steps if steps is None else steps
        while self.step < end:
            logs = self.train_step()
            if self.step % self.cfg.log_every == 0 or self.step == end:
                self.history.append(logs)
                log.info(
                    "step %d: %s",
                    self.step,
                    " ".join(f"{k}={v:.4g}" for k, v in logs.items() if k != "step"),
                )
            if on_checkpoint and (self.step % self.cfg.checkpoint_every == 0 or self.step == end):
                on_checkpoint(self)
            if progress:
                progress(1)
        return self.history

    # -- checkpoints ----------------------------------------------------------------------

    def state_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything to sample from (``ema``, configs, normaliser) and to resume exactly."""
        return {
            "model": self.raw_model.state_dict(),
            "ema": self.ema.module.state_dict(),
            "ema_n_averaged": self.ema.n_averaged.clone(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "history": self.history,
            "train_config": dataclasses.asdict(self.cfg),
            "model_config": dataclasses.asdict(self.model_cfg),
            "diffusion_config": dataclasses.asdict(self.diffusion_cfg),
            "normalizer": self.norm.state_dict(),
            "extra": extra or {},
        }

    def save(self, path: str, extra: dict[str, Any] | None = None) -> None:
        """``state_dict(extra)`` to a local file (``VideoMDM.from_checkpoint`` reads it)."""
        write_state(self.state_dict(extra), path)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state_dict()``; the configs must match this trainer's (``steps``
        may differ: resuming to train longer is allowed)."""
        for key, mine in (
            ("train_config", self.cfg),
            ("model_config", self.model_cfg),
            ("diffusion_config", self.diffusion_cfg),
        ):
            # through the dataclass: a field added since the checkpoint reads as its default
            theirs = dataclasses.asdict(type(mine)(**state[key]))
            ours = dataclasses.asdict(mine)
            if key == "train_config":
                theirs.pop("steps", None), ours.pop("steps", None)
            if theirs != ours:
                diff = {k: (theirs.get(k), v) for k, v in ours.items() if theirs.get(k) != v}
                raise ValueError(f"checkpoint {key} differs from this run's: {diff}")
        self.raw_model.load_state_dict(state["model"])
        self.ema.module.load_state_dict(state["ema"])
        self.ema.n_averaged.copy_(state["ema_n_averaged"])
        self.opt.load_state_dict(state["optimizer"])
        self.norm = Normalizer.from_state_dict(state["normalizer"])
        self.step = int(state["step"])
        self.history = list(state["history"])


def _bucket_size(cfg: TrainConfig, steps: int) -> int:
    """Steps per t* bucket: K buckets span ceil(t* / (K - 1)) * K steps (the release's)."""
    size = -(-cfg.t_star // (cfg.t_star_buckets - 1))
    if size * cfg.t_star_buckets >= steps:
        raise UserError(
            f"t_star {cfg.t_star} with {cfg.t_star_buckets} buckets spans "
            f"{size * cfg.t_star_buckets} steps, not fewer than the schedule's {steps}"
        )
    return size


def write_state(state: dict[str, Any], path: str) -> None:
    """A ``Trainer.state_dict`` to a local file."""
    torch.save(state, path)


def read_state(path: str) -> dict[str, Any]:
    """A training checkpoint written by ``Trainer.save`` (plain tensors and values, read with
    ``weights_only=True`` so a file from elsewhere cannot run code)."""
    return torch.load(path, map_location="cpu", weights_only=True)
