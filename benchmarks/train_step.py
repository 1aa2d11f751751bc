"""Training and sampling speed of the denoiser on this machine.

One training step is the real one: q_sample at a random t, denoiser forward (text
condition, CFG dropout), features -> joints, depth-weighted reprojection loss (position +
velocity), backward, gradient clipping and an AdamW step. Variants toggle the speed levers
(bf16 autocast, torch.compile, fused AdamW, pre/post-norm). Sampling is DDIM at 50 and 10
steps with classifier-free guidance (a doubled batch), reported per generated sample.

    python benchmarks/train_step.py [--preset small|paper|both] [--batch 16] [--frames 120]
        [--steps 5] [--variants fp32,bf16,...] [--threads N] [--device cpu|cuda]

The reference MDM denoiser takes 1.43 s per step (11 samples/s) at the paper preset with
batch 16 and 120 frames on the 2-core CPU this project is developed on.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass

# OpenMP workers that spin while waiting collapse when the cores are shared (measured here:
# 9.4 s/step with 2 spinning threads vs 1.65 s passive); must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from videomdm.config import preset  # noqa: E402
from videomdm.models.mdm import losses, schedulers  # noqa: E402
from videomdm.models.mdm.config import DenoiserConfig  # noqa: E402
from videomdm.models.mdm.denoiser import Denoiser  # noqa: E402
from videomdm.models.motion import features  # noqa: E402
from videomdm.models.motion.cameras import project, sample_cameras, world_to_camera  # noqa: E402
from videomdm.models.motion.layout import FEATURE_DIM  # noqa: E402

VARIANTS = ("fp32", "fp32-postnorm", "bf16", "fp32-compile", "bf16-compile", "fp32-foreach")


@dataclass(frozen=True)
class Variant:
    bf16: bool = False
    compile: bool = False
    norm_first: bool = True
    fused_adamw: bool = True

    @classmethod
    def parse(cls, name: str) -> Variant:
        if name not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {name!r}")
        return cls(
            bf16=name.startswith("bf16"),
            compile=name.endswith("compile"),
            norm_first=name != "fp32-postnorm",
            fused_adamw=name != "fp32-foreach",
        )


def make_batch(batch: int, frames: int, device: str) -> dict[str, torch.Tensor]:
    """Random features with the cameras and 2D keypoints of their own joints."""
    x0 = torch.randn(batch, frames, FEATURE_DIM, device=device) * 0.1
    R, t = (
        torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: N806
        for a in sample_cameras(batch, np.random.default_rng(0))
    )
    u, _ = project(world_to_camera(features.features_to_joints(x0), R[:, None], t[:, None]))
    return {
        "x0": x0,
        "R": R,
        "t": t,
        "u": u,
        "cond": torch.randn(batch, 384, device=device),
        "conf": torch.ones(batch, frames, 17, device=device),
        "mask": torch.ones(batch, frames, dtype=torch.bool, device=device),
    }


class Trainer:
    """One variant's model, optimiser and batch; ``step()`` times one real training step."""

    def __init__(self, cfg: DenoiserConfig, var: Variant, batch: int, frames: int, device: str):
        torch.manual_seed(0)
        self.model = Denoiser(cfg).to(device).train()
        self.fwd = torch.compile(self.model) if var.compile else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=var.fused_adamw)
        self.sched = schedulers.DDPMScheduler().to(device)
        self.b = make_batch(batch, frames, device)
        self.bf16, self.device = var.bf16, device

    def step(self) -> float:
        b, start = self.b, time.perf_counter()
        t = torch.randint(0, self.sched.num_train_steps, (len(b["x0"]),), device=self.device)
        x_t = self.sched.add_noise(b["x0"], torch.randn_like(b["x0"]), t)
        amp = torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16)
        with amp:
            x0_hat = self.fwd(x_t, t, b["cond"], None)  # full-length clips: no padding mask
        joints = features.features_to_joints(x0_hat.float())  # (B, T, 17, 3)
        terms = losses.reprojection_loss(joints, b["R"], b["t"], b["u"], b["conf"], b["mask"])
        loss, _ = losses.total_loss(terms)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def train_rates(trainers: list[Trainer], steps: int) -> list[float]:
    """Median seconds per step of each trainer after two warm-up steps. Variants take turns
    step by step, so a neighbour's load on a shared machine hits all of them alike."""
    times: list[list[float]] = [[] for _ in trainers]
    for i in range(steps + 2):
        for k, trainer in enumerate(trainers):
            sec = trainer.step()
            if i >= 2:
                times[k].append(sec)
    return [float(np.median(t)) for t in times]


def sample_ms(
    cfg: DenoiserConfig, var: Variant, n: int, frames: int, ddim_steps: int, device: str
) -> float:
    """Milliseconds per generated sample, DDIM with CFG (scale 2.5), ``n`` at once."""
    model = Denoiser(cfg).to(device).eval()
    fwd = torch.compile(model) if var.compile else model
    sched = schedulers.DDIMScheduler(num_inference_steps=ddim_steps).to(device)
    cond = torch.randn(n, 384, device=device)
    amp = torch.autocast(device, dtype=torch.bfloat16, enabled=var.bf16)

    def model_fn(x, t, c, drop):
        with amp:
            return fwd(x, t, c, drop_cond=drop).float()

    shape = (n, frames, FEATURE_DIM)
    with torch.inference_mode():
        warm = schedulers.DDIMScheduler(num_inference_steps=1)
        schedulers.sample(model_fn, shape, warm, 2.5, cond)
        start = time.perf_counter()
        schedulers.sample(model_fn, shape, sched, 2.5, cond, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["small", "paper", "both"], default="both")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--variants", default="fp32,bf16", help=f"comma list from {VARIANTS}")
    ap.add_argument("--sample-n", type=int, default=4, help="samples generated at once")
    ap.add_argument("--no-sampling", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = ["small", "paper"] if args.preset == "both" else [args.preset]
    table = Table(
        title=f"batch {args.batch} x {args.frames} frames, {args.device}, "
        f"{torch.get_num_threads()} threads"
    )
    cols = (
        "preset",
        "variant",
        "s/step",
        "samples/s",
        "vs MDM 11/s",
        "vs first variant",
        "DDIM50 ms",
        "DDIM10 ms",
    )
    for col in cols:
        table.add_column(col, justify="right")
    names = args.variants.split(",")
    for preset_name in presets:
        vars_ = [Variant.parse(n) for n in names]
        model = preset(preset_name)[0]
        cfgs = [dataclasses.replace(model, norm_first=v.norm_first) for v in vars_]
        trainers = [
            Trainer(c, v, args.batch, args.frames, args.device)
            for c, v in zip(cfgs, vars_, strict=True)
        ]
        secs = train_rates(trainers, args.steps)
        del trainers
        for name, var, cfg, sec in zip(names, vars_, cfgs, secs, strict=True):
            ms = ["-", "-"]
            if not args.no_sampling:
                ms = [
                    f"{sample_ms(cfg, var, args.sample_n, args.frames, s, args.device):.0f}"
                    for s in (50, 10)
                ]
            rate = args.batch / sec
            table.add_row(
                preset_name,
                name,
                f"{sec:.3f}",
                f"{rate:.1f}",
                f"{rate / 11.2:.2f}x",
                f"{secs[0] / sec:.2f}x",
                *ms,
            )
            Console().print(f"{preset_name} {name}: {sec:.3f} s/step, sampling ms {ms}")
    Console().print(table)


if __name__ == "__main__":
    main()
