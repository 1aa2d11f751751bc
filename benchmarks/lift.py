"""Lifter throughput and training budget: lifting frames/s (one clip, a batch of clips) and,
for each training budget asked for, the training time and the validation metrics against the
issue's targets (PA-MPJPE < 60 mm clean, < 90 mm noisy; validation clips held out by clip).

    python benchmarks/lift.py [--steps 1500 2500] [--threads 1] [--mocap ../shared/assets/mocap]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from videomdm.models.evaluation.lifter import evaluate_lifter
from videomdm.models.lifter import network as lf
from videomdm.models.lifter import train as lt
from videomdm.models.motion.cameras import clip_camera, project
from videomdm.models.motion.mocap import load_mocap_dir

TARGET_PA_CLEAN, TARGET_PA_NOISY = 60.0, 90.0


def lift_rates(model: lf.Lifter, clips: list, repeats: int = 3) -> list[tuple[str, float]]:
    """frames/s lifting one 300-frame clip at a time, and all clips in one ``lift_many``."""
    rng = np.random.default_rng(0)
    views = []
    for clip in clips:
        R, t = clip_camera(clip.joints.astype(np.float64), rng)  # noqa: N806
        views.append(project(clip.joints @ R.T + t)[0])
    confs = [np.ones(u.shape[:2]) for u in views]
    one = next(u for u in views if len(u) >= 300)[:300]
    lf.lift(model, one, np.ones((300, 17)))  # warm-up
    tic = time.perf_counter()
    for _ in range(repeats * 10):
        lf.lift(model, one, np.ones((300, 17)))
    single = repeats * 10 * 300 / (time.perf_counter() - tic)
    tic = time.perf_counter()
    for _ in range(repeats):
        lf.lift_many(model, views, confs)
    frames = sum(len(u) for u in views)
    batch = repeats * frames / (time.perf_counter() - tic)
    return [("lift, one 300-frame clip", single), (f"lift_many, {len(views)} clips", batch)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_mocap = Path(__file__).resolve().parents[2] / "shared" / "assets" / "mocap"
    ap.add_argument("--mocap", type=Path, default=default_mocap)
    ap.add_argument("--steps", type=int, nargs="*", default=[lf.LifterConfig().steps])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest on cores shared with other work)",
    )
    ap.add_argument("--save", type=Path, help="write the last trained lifter's checkpoint here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=max(Console().width, 110))  # keep every column when piped

    clips = load_mocap_dir(args.mocap)
    train, val = lt.split_by_clip(clips)
    console.print(
        f"{len(train)} training clips, {len(val)} validation clips "
        f"({sum(len(c.joints) for c in val)} frames); torch threads "
        f"{torch.get_num_threads()}"
    )

    table = Table(title="lifter training budget (validation clips, mm)")
    for col in (
        "steps",
        "train s",
        "wall s",
        "PA clean",
        "PA noisy",
        "MPJPE clean",
        "MPJPE noisy",
        "accel clean",
        "accel noisy",
        "targets",
    ):
        table.add_column(col, justify="right")
    if not args.steps:
        ap.error("--steps needs at least one budget")
    for steps in args.steps:
        cfg = dataclasses.replace(lf.LifterConfig(), steps=steps)
        tic = time.perf_counter()
        model, hist = lt.train_lifter(train, val, cfg, seed=args.seed)
        wall = time.perf_counter() - tic
        r = evaluate_lifter(model, val, np.random.default_rng(123))
        ok = r["pa_mpjpe_mm"] < TARGET_PA_CLEAN and r["noisy_pa_mpjpe_mm"] < TARGET_PA_NOISY
        table.add_row(
            str(steps),
            f"{hist['time_s'][-1]:.0f}",
            f"{wall:.0f}",
            *(
                f"{r[k]:.1f}"
                for k in (
                    "pa_mpjpe_mm",
                    "noisy_pa_mpjpe_mm",
                    "mpjpe_mm",
                    "noisy_mpjpe_mm",
                    "accel_error",
                    "noisy_accel_error",
                )
            ),
            "met" if ok else "missed",
        )
    if args.save:
        lf.save_checkpoint(args.save, model, cfg, {"metrics": r, "history": hist})
    baseline = Table(title="no-learning baseline (fixed-depth back-projection, mm)")
    for col in ("PA clean", "PA noisy", "MPJPE clean", "MPJPE noisy"):
        baseline.add_column(col, justify="right")
    baseline.add_row(
        *(
            f"{r[k]:.1f}"
            for k in (
                "baseline_pa_mpjpe_mm",
                "baseline_noisy_pa_mpjpe_mm",
                "baseline_mpjpe_mm",
                "baseline_noisy_mpjpe_mm",
            )
        )
    )
    rates = Table(title="lifting throughput (CPU)")
    rates.add_column("case")
    rates.add_column("frames/s", justify="right")
    for name, rate in lift_rates(model, val):
        rates.add_row(name, f"{rate:,.0f}")
    console.print(table, baseline, rates)


if __name__ == "__main__":
    main()
