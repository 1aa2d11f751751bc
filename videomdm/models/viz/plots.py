"""Pictures of an evaluation: bars of the reconstruction scores, and one held-out clip
animated as the truth and every method saw it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from videomdm.models.evaluation.ladder_config import RungResult  # noqa: E402
from videomdm.models.evaluation.protocol import View, to_camera  # noqa: E402
from videomdm.models.viz.animation import animate_motions  # noqa: E402
from videomdm.models.viz.player import Motion, write_player  # noqa: E402

SCORE_PANELS = (
    ("mpjpe_mm", "MPJPE (mm)"),
    ("n_mpjpe_mm", "N-MPJPE (mm, scale fitted)"),
    ("pa_mpjpe_mm", "PA-MPJPE (mm)"),
    ("accel_error", "accel. error (mm/frame²)"),
)


def plot_reconstruction(scores: dict[str, dict[str, float]], path: Path) -> Path:
    """Bars of MPJPE, N-MPJPE, PA-MPJPE and acceleration error per method."""
    fig, axes = plt.subplots(1, len(SCORE_PANELS), figsize=(14, 3.2))
    names = list(scores)
    for ax, (k, label) in zip(axes, SCORE_PANELS, strict=True):
        vals = [scores[n][k] for n in names]
        ax.bar(names, vals, color=[plt.get_cmap("tab10")(i) for i in range(len(names))])
        ax.set_title(label, fontsize=10)
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle("Held-out mocap clips, noisy 2D from random cameras", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _in_true_world(view: View, preds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The truth, then every method's reconstruction (world joints in the view's lifted
    frame) moved into the true world frame."""

    def true_world(world_lifted: np.ndarray) -> np.ndarray:
        cam = to_camera(world_lifted, view.lifted)
        return (cam - view.truth.t) @ view.truth.R

    return [view.truth.joints] + [true_world(p) for p in preds.values()]


def animate_example(view: View, preds: dict[str, np.ndarray], path: Path) -> Path:
    """A gif of one view: the truth and every method's reconstruction side by side."""
    return animate_motions(path, _in_true_world(view, preds), ["truth", *preds], stride=3)


def play_example(view: View, preds: dict[str, np.ndarray], path: Path, fps: float = 30.0) -> Path:
    """The same clip in the HTML player (truth and every method, each panel free to rotate)."""
    names = ["truth", *preds]
    motions = [Motion(n, j, fps) for n, j in zip(names, _in_true_world(view, preds), strict=True)]
    return write_player(path, motions, title="held-out clip: truth and each method")


def plot_ladder(rungs: Sequence[RungResult], path: Path) -> Path:
    """Bars per rung: x0 error at t = 2 (with the copy baseline), within-prompt diversity
    (with the real held-out clips' value) and, where scored, the reconstruction MPJPE of the
    weak lifter's views (with the lifter's own)."""

    def label(r: RungResult) -> str:
        return f"{r.recipe}\n{r.rung}"

    labels = [label(r) for r in rungs]
    recon = "recon_weak_mpjpe_mm"
    scored = [r for r in rungs if recon in r.metrics]
    n = 3 if scored else 2
    fig, axes = plt.subplots(1, n, figsize=(2 + n + 0.6 * n * len(rungs), 4))
    a, b = axes[0], axes[1]
    a.bar(labels, [r.metrics["err_t2"] for r in rungs], color="tab:blue")
    a.axhline(rungs[0].metrics["copy_t2"], color="k", ls="--", label="returning x_t")
    a.set_ylabel("x0_hat error at t = 2 (mm, root-relative)")
    a.legend()
    b.bar(labels, [r.metrics["within_prompt"] for r in rungs], color="tab:orange")
    b.axhline(rungs[0].real["within_prompt"], color="k", ls="--", label="real clips")
    b.set_ylabel("diversity among 8 samples of one prompt (m)")
    b.legend()
    if scored:
        c = axes[2]
        c.bar(
            [label(r) for r in scored],
            [r.metrics[recon] for r in scored],
            color="tab:green",
        )
        c.axhline(scored[0].lifters[recon], color="k", ls="--", label="the weak lifter")
        c.set_ylabel("weak lifter's views: reconstruction MPJPE (mm)")
        c.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
