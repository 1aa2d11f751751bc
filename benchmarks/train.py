"""VideoMDM training and sampling speed through the real ``Trainer`` and ``generate``.

A step is everything ``videomdm train`` does per batch: cutting windows and their features
and canonical cameras, q_sample, the denoiser, features -> joints, the 2D reprojection and
redundant-channel losses, backward, clipping, AdamW and the EMA update. Sampling is DDIM with
classifier-free guidance (a doubled batch) under the same autocast, reported per generated
motion.

    python benchmarks/train.py [--presets small,paper] [--steps 6] [--amp bf16,none]
        [--device cpu|cuda] [--threads N]

Reference: the original MDM denoiser takes 1.43 s per step (11 samples/s) at the paper
preset with batch 16 and 120 frames on this project's 2-core CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see videomdm/cli.py

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from videomdm.config import preset  # noqa: E402
from videomdm.models.mdm.sampling import generate  # noqa: E402
from videomdm.models.mdm.trainer import Trainer  # noqa: E402
from videomdm.models.motion.cameras import project, sample_cameras  # noqa: E402
from videomdm.models.motion.mocap import load_mocap_dir  # noqa: E402
from videomdm.models.motion.sample import MotionSample  # noqa: E402

ASSETS = os.environ.get(
    "VIDEOMDM_ASSETS", os.path.join(os.path.dirname(__file__), "../../shared/assets")
)
BATCH = {"small": 32, "paper": 16}  # the paper preset's batch as the reference MDM timing


def samples(n: int = 64) -> list[MotionSample]:
    rng = np.random.default_rng(0)
    out = []
    for c in [c for c in load_mocap_dir(os.path.join(ASSETS, "mocap")) if len(c.joints) >= 120][:n]:
        j = c.joints.astype(np.float64)
        R, t = sample_cameras(1, rng, distance_m=(3.0, 8.0), target=j[:, 11:13].mean((0, 1)))  # noqa: N806
        u, _ = project(j @ R[0].T + t[0])
        conf = np.full(u.shape[:2], 0.9, np.float32)
        out.append(MotionSample(c.joints, u.astype(np.float32), conf, R[0], t[0], c.text))
    return out


def time_steps(trainer: Trainer, steps: int) -> float:
    """Median seconds per step: on a shared 2-core VM single steps vary by +-10%."""
    trainer.train_step()  # warm-up (allocator, autocast caches)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def sample_ms(trainer: Trainer, ddim: int, n: int = 4) -> float:
    model = trainer.ema.module.eval()
    cond = torch.zeros(n, 384, device=trainer.device)
    window = trainer.cfg.window
    amp = trainer.cfg.amp  # the table's amp column applies to sampling too
    generate(model, trainer.norm, trainer.diffusion_cfg, cond, n, window, 2, 2.5, amp=amp)
    start = time.perf_counter()
    generate(model, trainer.norm, trainer.diffusion_cfg, cond, n, window, ddim, 2.5, amp=amp)
    return (time.perf_counter() - start) * 1000 / n


def measure(name: str, amp: str, steps: int, device: str) -> list[str]:
    """One table row: training and sampling speed of one preset under one autocast."""
    data = samples()
    cond = np.zeros((len(data), 384), np.float32)
    model_cfg, cfg = preset(name)
    batch, window = BATCH[name], cfg.window
    cfg = dataclasses.replace(cfg, batch_size=batch, amp=amp, log_every=10**9)
    tr = Trainer(data, cond, model_cfg, cfg, device=device)
    sec = time_steps(tr, steps)
    rate = batch / sec
    return [
        name,
        amp,
        f"{batch} x {window}",
        f"{sec:.3f}",
        f"{rate:.1f}",
        f"{rate / 11:.2f}x",
        f"{sample_ms(tr, 50):.0f}",
        f"{sample_ms(tr, 10):.0f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--presets", default="small,paper")
    ap.add_argument("--amp", default="bf16,none")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--row", action="store_true", help=argparse.SUPPRESS)  # one row as JSON
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.row:
        print(json.dumps(measure(args.presets, args.amp, args.steps, args.device)))
        return
    table = Table(
        title=f"VideoMDM training and sampling ({args.device}, {torch.get_num_threads()} threads)"
    )
    for col in (
        "preset",
        "amp",
        "batch x frames",
        "s/step",
        "samples/s",
        "vs MDM 11/s",
        "DDIM-50 ms/sample",
        "DDIM-10 ms/sample",
    ):
        table.add_column(col, justify="right")
    for name in args.presets.split(","):
        for amp in args.amp.split(","):
            # Each row in a fresh process: after the small preset had run in the same process,
            # the paper preset's step measured 1.20 s instead of 1.07 s (allocator state).
            cmd = [
                sys.executable,
                __file__,
                "--row",
                "--presets",
                name,
                "--amp",
                amp,
                "--steps",
                str(args.steps),
                "--device",
                args.device,
                "--threads",
                str(torch.get_num_threads()),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            table.add_row(*json.loads(out.strip().splitlines()[-1]))
    Console().print(table)


if __name__ == "__main__":
    main()
