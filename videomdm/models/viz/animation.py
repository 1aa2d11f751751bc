"""Pictures of canonical 3D motions, for checking mappings by eye (matplotlib, Agg).

Each frame is drawn facing the viewer: the clip is turned about Y so that its first frame's
body forward (from hips and shoulders) points at the camera. A correct skeleton then shows
its nose towards the viewer and its left side (blue) on the image's right; a mirrored one
shows the nose pointing away.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from videomdm.models.motion.skeleton import JOINT_NAMES, LIMBS, facing, root  # noqa: E402
from videomdm.models.viz.ground import ground  # noqa: E402

_LEFT, _RIGHT, _MID = "tab:blue", "tab:red", "0.3"


def _limb_colour(a: int, b: int) -> str:
    names = JOINT_NAMES[a] + JOINT_NAMES[b]
    if names.count("left") == 2 or (a == 0 and "left" in names):
        return _LEFT
    if names.count("right") == 2 or (a == 0 and "right" in names):
        return _RIGHT
    return _MID


def face_camera(joints: np.ndarray) -> np.ndarray:
    """Turn a motion ``(T, 17, 3)`` about Y so frame 0 faces +Z (towards the plot's viewer)."""
    fwd = facing(joints[0])
    yaw = np.arctan2(fwd[0], fwd[2])  # rotate by -yaw about Y
    c, s = np.cos(-yaw), np.sin(-yaw)
    rot_y = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return joints @ rot_y.T


def _draw_pose(ax, pose: np.ndarray, azim: float, title: str) -> None:
    # plot axes (x, y, z) = world (x, -z, y): a proper rotation, so nothing is mirrored
    px, py, pz = pose[:, 0], -pose[:, 2], pose[:, 1]
    for a, b in LIMBS:
        ax.plot([px[a], px[b]], [py[a], py[b]], [pz[a], pz[b]], color=_limb_colour(a, b), lw=2)
    ax.scatter(px, py, pz, s=6, color="k")
    ax.scatter(px[0], py[0], pz[0], s=25, color="gold", edgecolors="k", zorder=5)
    ax.set(xlim=(-0.9, 0.9), ylim=(-0.9, 0.9), zlim=(-0.05, 1.95))
    ax.set_box_aspect((1.8, 1.8, 2.0))
    ax.set_proj_type("ortho")  # heights read true against the axis
    ax.view_init(elev=0, azim=azim)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=6)


def plot_frames(joints: np.ndarray, path: str | Path, title: str = "", n_frames: int = 6) -> Path:
    """Save a PNG of ``n_frames`` evenly spaced frames of a ``(T, 17, 3)`` motion seen from
    the front, plus the first and middle frames seen from the side (body facing left)."""
    joints = face_camera(np.asarray(joints, dtype=np.float64))
    idx = np.linspace(0, len(joints) - 1, min(n_frames, len(joints))).round().astype(int)
    views = [(int(t), -90.0, f"frame {t}") for t in idx]
    views += [(int(t), 0.0, f"frame {t}, side") for t in (0, len(joints) // 2)]
    cols = 4
    rows = int(np.ceil(len(views) / cols))
    fig = plt.figure(figsize=(3.6 * cols, 4.4 * rows))
    for k, (t, azim, label) in enumerate(views):
        ax = fig.add_subplot(rows, cols, k + 1, projection="3d")
        pose = joints[t] - root(joints[t]) * np.array([1.0, 0.0, 1.0])  # (17, 3), root over 0
        _draw_pose(ax, pose, azim, label)
    fig.suptitle(
        f"{title}\nblue = left, red = right, gold = nose; front views face the body", fontsize=10
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def animate_motions(
    path: str | Path,
    motions: list[np.ndarray],
    titles: list[str] | None = None,
    fps: float = 30.0,
    stride: int = 2,
    azim: float = -65.0,
    elev: float = 12.0,
    panel_px: int = 420,
) -> Path:
    """A gif of motions ``(T, 17, 3)`` side by side (world, Y up), playing in real time.

    Each motion stands on the floor (y = 0, ``ground``) and is turned so its first frame faces
    the viewer, seen from the front-left and a little above (``azim``, ``elev``) with equal
    axes. Each panel follows its body's root over a floor grid and draws the root's path on it,
    so travel and turns remain visible. Panels are ``panel_px`` pixels square."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    motions = [face_camera(ground(np.asarray(m, dtype=np.float64))) for m in motions]
    titles = titles or [""] * len(motions)
    dpi = 80
    fig = plt.figure(figsize=(panel_px / dpi * len(motions), panel_px / dpi), dpi=dpi)
    axes = [fig.add_subplot(1, len(motions), k + 1, projection="3d") for k in range(len(motions))]
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.92, wspace=0)
    n = max(len(m) for m in motions)

    def draw(t: int) -> list:
        for ax, m, title in zip(axes, motions, titles, strict=True):
            f = min(t, len(m) - 1)
            centre = root(m[f]) * np.array([1.0, 0.0, 1.0])
            _draw_frame(ax, m[f] - centre, root(m[: f + 1]) - centre, azim, elev)
            ax.set_title(f"{title}  {f / fps:.1f} s", fontsize=11)
        return []

    anim = FuncAnimation(fig, draw, frames=range(0, n, stride), blit=False)
    anim.save(path, writer=PillowWriter(fps=max(1, round(fps / stride))))
    plt.close(fig)
    return path


def _draw_frame(ax, pose: np.ndarray, trail: np.ndarray, azim: float, elev: float) -> None:
    """One animation panel: a floor grid at y = 0, the root's trail, the skeleton; no axes."""
    ax.cla()
    ticks = np.arange(-1.0, 1.01, 0.5)
    for v in ticks:  # plot axes (x, y, z) = world (x, -z, y)
        ax.plot([v, v], [-1.0, 1.0], [0, 0], color="0.85", lw=0.8)
        ax.plot([-1.0, 1.0], [v, v], [0, 0], color="0.85", lw=0.8)
    ax.plot(trail[:, 0], -trail[:, 2], np.zeros(len(trail)), color="0.55", lw=1.2)
    px, py, pz = pose[:, 0], -pose[:, 2], pose[:, 1]
    for a, b in LIMBS:
        ax.plot([px[a], px[b]], [py[a], py[b]], [pz[a], pz[b]], color=_limb_colour(a, b), lw=3)
    ax.scatter(px, py, pz, s=10, color="k", depthshade=False)
    ax.scatter(px[0], py[0], pz[0], s=40, color="gold", edgecolors="k", depthshade=False)
    ax.set(xlim=(-1.0, 1.0), ylim=(-1.0, 1.0), zlim=(-0.15, 1.85))
    ax.set_box_aspect((1, 1, 1), zoom=1.45)  # equal axes: 2 m each way
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()
