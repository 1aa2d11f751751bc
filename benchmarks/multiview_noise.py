"""The detector-noise measurement of a multi-view report, checked by simulation.

    python benchmarks/multiview_noise.py out/multiview/multiview.json \\
        --calibration ../shared/assets/multiview/pose2sim_multiperson/Calib.qca.txt \\
        --mocap ../shared/assets/mocap/cmu_iclone_bvh \\
        --mocap ../shared/assets/mocap/cmu_bvh_subject131

Prints (1) the measured relative errors of the real detector next to the synthetic noise model's
(default and fitted) on mocap through the lifter's training cameras, and (2) a simulation of
the yardstick itself: mocap placed in the calibrated room, seen by every camera with the
fitted noise scaled by k, triangulated from the other views exactly as the truth is, and the
held-out residuals measured as on the real recording. The real residuals contain the truth's
error as well as the detector's, so the k whose simulated residuals match the measured ones
is the detector's share; the same runs give the truth's own error against the mocap (the
yardstick's floor) at that noise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from videomdm.models.evaluation.multiview import lowpass
from videomdm.models.evaluation.noise import (
    NoiseStats,
    correlation_time,
    noise_stats,
    pose_spread,
    synthetic_errors,
)
from videomdm.models.evaluation.pose_scores import motion_scores
from videomdm.models.motion.calibration import CameraModel, load_calibration
from videomdm.models.motion.cameras import NoiseConfig, add_2d_noise
from videomdm.models.motion.mocap import load_mocap_dir
from videomdm.models.motion.skeleton import RIGID_BONES, bone_lengths
from videomdm.models.motion.triangulation import fix_swaps, triangulate


def in_room(joints: np.ndarray, where: tuple[float, float], frames: int = 100) -> np.ndarray:
    """A mocap motion (Y up) standing at ``where`` on the floor of a Z-up room."""
    j = joints[:frames].astype(np.float64)[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
    r = j[:, 11:13].mean(1)
    return j - np.array([r[:, 0].mean(), r[:, 1].mean(), j[..., 2].min()]) + [*where, 0.0]


def simulate(cams: list[CameraModel], motions, cfg: NoiseConfig, rng, fps: float = 60.0):
    """Held-out residual stats, truth PA-MPJPE / sequence MPJPE (mm) and bone std (mm)."""
    errs, scores, pa, seq, bones = [], [], [], [], []
    for X in motions:
        kp = []
        for cam in cams:
            px, _ = cam.project(X)
            f = cam.intrinsics.fx
            noisy, conf = add_2d_noise(px / f, rng, cfg)
            kp.append(np.concatenate([noisy * f, conf[..., None]], -1))
        kp = np.stack(kp)
        for v, cam in enumerate(cams):
            others = [w for w in range(len(cams)) if w != v]
            fixed, _ = fix_swaps([cams[w] for w in others], kp[others])
            truth, _, _ = triangulate([cams[w] for w in others], fixed)
            truth = lowpass(truth, fps, 6.0)
            proj, _ = cam.project(truth)
            s = pose_spread(kp[v, ..., :2], kp[v, ..., 2])
            errs.append((kp[v, ..., :2] - proj) / s[:, None, None])
            scores.append(kp[v, ..., 2])
            R, t = cam.pose()  # noqa: N806
            score = motion_scores((X @ R.T + t)[::2], (truth @ R.T + t)[::2])
            pa.append(score.pa_mpjpe_mm)
            seq.append(score.mpjpe_seq_mm)
            bones.append(1000 * np.nanmedian(np.nanstd(bone_lengths(truth, RIGID_BONES), 0)))
    stats = noise_stats(np.concatenate(errs), np.concatenate(scores))
    return stats, float(np.mean(pa)), float(np.mean(seq)), float(np.mean(bones))


def _upright_and_seen(x: np.ndarray, cams: list[CameraModel]) -> bool:
    """A standing body (head 1.2 m over the ankles) in front of every camera."""
    up = np.median(x[:, 0, 2] - x[:, 15:17, 2].mean(1)) > 1.2
    return bool(up and all((cam.project(x)[1] > 0.5).all() for cam in cams))


def _row(name: str, s: NoiseStats) -> str:
    return (
        f"| {name} | {s.mean_sigma:.3f} | {s.outlier_rate:.4f} | {s.missed_rate:.3f} | "
        f"{s.score_slope:.3f} | {s.corr_s:.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report", help="multiview.json of `videomdm evaluate --multiview`")
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--mocap", action="append", required=True)
    ap.add_argument("--scales", default="1.0,0.7,0.5")
    ap.add_argument("--motions", type=int, default=12, help="placements simulated")
    a = ap.parse_args()
    noise = json.loads(open(a.report).read())["detector_noise"]
    measured = NoiseStats(**{k: v for k, v in noise["measured"].items() if k != "mean_sigma"})
    fit = dict(noise["fitted"])
    fit["joint_scale"] = tuple(fit["joint_scale"])
    fitted = NoiseConfig(**fit)
    motions = [c.joints for d in a.mocap for c in load_mocap_dir(d, fps=60.0)]
    rng = np.random.default_rng(0)
    head = "| relative 2D error (error / pose spread) | mean sigma | outliers | missed |"
    print(head + " score slope | correlation time (s) |")
    print("|---|---|---|---|---|---|")
    print(_row("real detector (measured)", measured))
    for name, cfg in (("synthetic, default", NoiseConfig()), ("synthetic, fitted", fitted)):
        runs = [synthetic_errors([m[::2]], cfg, rng, cameras=1) for m in motions[:40]]
        s = noise_stats(np.concatenate([e for e, _ in runs]), np.concatenate([c for _, c in runs]))
        s = dataclasses.replace(s, corr_s=correlation_time([e for e, _ in runs], 30.0, lag=1))
        print(_row(name, s))
    cams = list(load_calibration(a.calibration).values())
    placed = [in_room(m, w) for m in motions for w in ((-1.1, -0.1), (0.2, -0.4))]
    placed = [x for x in placed if _upright_and_seen(x, cams)][: a.motions]
    print(f"\n{len(placed)} placements of upright motions seen by every camera")
    head = f"\n| jitter scale k | held-out residual sigma (real {measured.mean_sigma:.3f}) |"
    print(head + " truth PA-MPJPE | truth sequence MPJPE | truth bone std (mm) |")
    print("|---|---|---|---|---|")
    for k in (float(x) for x in a.scales.split(",")):
        cfg = dataclasses.replace(fitted, jitter_px=fitted.jitter_px * k)
        s, pa, seq, bones = simulate(cams, placed, cfg, rng)
        print(f"| {k:.2f} | {s.mean_sigma:.3f} | {pa:.1f} | {seq:.1f} | {bones:.1f} |")


if __name__ == "__main__":
    main()
