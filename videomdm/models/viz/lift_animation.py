"""Pictures of the lifter at work: 2D input, 3D output and ground truth side by side.

The 3D panels show camera-frame motions, root-aligned, turned so that up in the image is
up on the page: plot axes (x, y, z) = camera (x, z, -y), seen from slightly above and to the
side of the camera (so depth errors show, which a view straight down the camera axis hides).
Left limbs are blue, right limbs red, the nose gold.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

from videomdm.models.motion.skeleton import LIMBS, root  # noqa: E402
from videomdm.models.viz.animation import _limb_colour  # noqa: E402


def _draw_2d(ax, u: np.ndarray, conf: np.ndarray, lim: tuple) -> None:
    ax.cla()
    for a, b in LIMBS:
        alpha = float(np.clip(min(conf[a], conf[b]), 0.15, 1.0))
        ax.plot(u[[a, b], 0], u[[a, b], 1], color=_limb_colour(a, b), lw=2, alpha=alpha)
    ax.scatter(u[:, 0], u[:, 1], s=8, c=np.clip(conf, 0, 1), cmap="viridis", vmin=0, vmax=1)
    ax.scatter(u[0, 0], u[0, 1], s=25, color="gold", edgecolors="k", zorder=5)
    ax.set(xlim=lim[0], ylim=lim[1][::-1], aspect="equal", title="2D input (normalised)")
    ax.tick_params(labelsize=6)


def _draw_3d(ax, pose: np.ndarray, title: str, radius: float) -> None:
    ax.cla()
    px, py, pz = pose[:, 0], pose[:, 2], -pose[:, 1]  # camera (x, z, -y): up is up
    for a, b in LIMBS:
        ax.plot(px[[a, b]], py[[a, b]], pz[[a, b]], color=_limb_colour(a, b), lw=2)
    ax.scatter(px[0], py[0], pz[0], s=25, color="gold", edgecolors="k", zorder=5)
    ax.set(xlim=(-radius, radius), ylim=(-radius, radius), zlim=(-radius, radius), title=title)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=15, azim=-60)
    ax.tick_params(labelsize=5)


def _limits_2d(u: np.ndarray, t: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square window that follows the person: centred on frame ``t``'s median keypoint,
    sized by the 90th percentile of its per-frame extents (so the zoom does not pump)."""
    extent = np.nanpercentile(np.nanmax(u, axis=1) - np.nanmin(u, axis=1), 90)
    half = 0.6 * float(extent) + 1e-3
    mid = np.nanmedian(u[t], axis=0)
    mid = np.zeros(2) if not np.isfinite(mid).all() else mid
    return (mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half)


def animate_lift(
    path: str | Path,
    u: np.ndarray,
    conf: np.ndarray,
    pred: np.ndarray,
    gt: np.ndarray | None = None,
    fps: float = 30.0,
    stride: int = 2,
    title: str = "",
    labels: tuple[str, str] = ("3D output", "ground truth"),
) -> Path:
    """Write a gif: ``u`` ``(T, 17, 2)`` with ``conf`` ``(T, 17)``, the lifted ``pred`` and the
    ground truth ``gt`` (``(T, 17, 3)`` camera frame, optional), every ``stride``-th frame,
    playing in real time for a clip at ``fps``; ``labels`` name the two 3D panels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pred = pred - root(pred)[:, None]
    gt = None if gt is None else gt - root(gt)[:, None]
    radius = 0.9
    n_panels = 2 if gt is None else 3
    fig = plt.figure(figsize=(3.0 * n_panels, 3.2), dpi=72)
    axes = [fig.add_subplot(1, n_panels, 1)]
    axes += [fig.add_subplot(1, n_panels, k, projection="3d") for k in range(2, n_panels + 1)]
    fig.suptitle(title, fontsize=8)
    frames = list(range(0, len(u), stride))

    def draw(t: int) -> list:
        _draw_2d(axes[0], u[t], conf[t], _limits_2d(u, t))
        _draw_3d(axes[1], pred[t], f"{labels[0]}  (frame {t})", radius)
        if gt is not None:
            _draw_3d(axes[2], gt[t], labels[1], radius)
        return []

    anim = FuncAnimation(fig, draw, frames=frames, blit=False)
    anim.save(path, writer=PillowWriter(fps=max(1, round(fps / stride))))  # real time
    plt.close(fig)
    return path


def save_lift_frame(
    path: str | Path,
    u: np.ndarray,
    conf: np.ndarray,
    pred: np.ndarray,
    gt: np.ndarray | None,
    t: int,
    title: str = "",
) -> Path:
    """One frame of ``animate_lift`` as a PNG, for looking at."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_panels = 2 if gt is None else 3
    fig = plt.figure(figsize=(3.0 * n_panels, 3.2), dpi=100)
    fig.suptitle(title, fontsize=8)
    ax2d = fig.add_subplot(1, n_panels, 1)
    _draw_2d(ax2d, u[t], conf[t], _limits_2d(u, t))
    _draw_3d(
        fig.add_subplot(1, n_panels, 2, projection="3d"),
        pred[t] - root(pred[t]),
        f"3D output  (frame {t})",
        0.9,
    )
    if gt is not None:
        _draw_3d(
            fig.add_subplot(1, n_panels, 3, projection="3d"),
            gt[t] - root(gt[t]),
            "ground truth",
            0.9,
        )
    fig.savefig(path)
    plt.close(fig)
    return path
