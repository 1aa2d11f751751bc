"""An interactive motion player: one self-contained HTML file (plotly, its JavaScript inlined,
so it opens with no network), with one 3D panel per motion side by side.

Each panel can be rotated and zoomed with the mouse; play/pause and a time slider drive every
panel at once. Panels show the skeleton (left limbs blue, right red, the nose gold), a floor
grid at y = 0 and the root's trail on the floor (its whole path faint, the part walked so far
dark). Axes are equal and fixed over the whole motion, so nothing is squashed and the view does
not jump, except for a motion that travels far: its panel follows the root with a fixed-size
window. The default camera looks at the body's front from a little above.

Plot axes (x, y, z) = world (x, -z, y): up is up and nothing is mirrored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from videomdm.models.motion.skeleton import LIMBS, facing, root
from videomdm.models.viz.animation import _LEFT, _MID, _RIGHT, _limb_colour
from videomdm.models.viz.ground import ground

_COLOURS = {_LEFT: "#1f77b4", _RIGHT: "#d62728", _MID: "#555555"}
_DYNAMIC = 5  # traces per panel that change with the frame: 3 limb groups, joints, trail
FOLLOW_HALF_M = 1.6  # a motion travelling farther is shown in a window that follows its root


@dataclass(frozen=True)
class Motion:
    """One panel: a motion ``(T, 17, 3)`` in metres, world Y up, and its title."""

    name: str
    joints: np.ndarray
    fps: float = 30.0


def _plot(p: np.ndarray) -> np.ndarray:
    """World ``(..., 3)`` -> plot axes (x, -z, y)."""
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def _segments(pose: np.ndarray, colour: str) -> tuple[list, list, list]:
    """Line coordinates of the limbs of one colour, separated by None (one trace per colour)."""
    xs: list = []
    ys: list = []
    zs: list = []
    for a, b in LIMBS:
        if _limb_colour(a, b) == colour:
            for c, out in zip(range(3), (xs, ys, zs), strict=True):
                out += [float(pose[a, c]), float(pose[b, c]), None]
    return xs, ys, zs


def _dynamic(pose: np.ndarray, trail: np.ndarray) -> list[go.Scatter3d]:
    """The traces that move: limbs by colour, joints (nose gold), the trail walked so far."""
    pose = np.round(pose, 3)  # millimetres: the file stays small
    traces = []
    for colour in (_LEFT, _RIGHT, _MID):
        x, y, z = _segments(pose, colour)
        traces.append(
            go.Scatter3d(x=x, y=y, z=z, mode="lines", line=dict(color=_COLOURS[colour], width=7))
        )
    sizes = [8] + [5] * (len(pose) - 1)
    colours = ["gold"] + ["#222222"] * (len(pose) - 1)
    traces.append(
        go.Scatter3d(
            x=pose[:, 0],
            y=pose[:, 1],
            z=pose[:, 2],
            mode="markers",
            marker=dict(size=sizes, color=colours),
        )
    )
    trail = np.round(trail, 3)
    traces.append(
        go.Scatter3d(
            x=trail[:, 0],
            y=trail[:, 1],
            z=trail[:, 2],
            mode="lines",
            line=dict(color="#333333", width=4),
        )
    )
    return traces


def _floor(lo: np.ndarray, hi: np.ndarray, step: float = 0.5) -> go.Scatter3d:
    """Grid lines on the floor (plot z = 0) covering ``lo``..``hi`` in plot x, y."""
    xs = np.arange(np.floor(lo[0] / step) * step, hi[0] + step, step)
    ys = np.arange(np.floor(lo[1] / step) * step, hi[1] + step, step)
    px: list = []
    py: list = []
    for x in xs:
        px += [x, x, None]
        py += [ys[0], ys[-1], None]
    for y in ys:
        px += [xs[0], xs[-1], None]
        py += [y, y, None]
    pz = [0.0 if v is not None else None for v in px]
    return go.Scatter3d(x=px, y=py, z=pz, mode="lines", line=dict(color="#c8c8c8", width=2))


@dataclass(frozen=True)
class _Panel:
    poses: np.ndarray  # (n, 17, 3) plot axes, one per shown frame
    trail: np.ndarray  # (n, 3) the root on the floor
    lo: np.ndarray  # (3,) the box every frame fits in
    hi: np.ndarray


def _panel(m: Motion, frames: np.ndarray) -> _Panel:
    """A motion grounded (floor at y = 0), its mean root over the origin, at ``frames``
    (the last frame held when it is shorter than the longest motion)."""
    j = ground(np.asarray(m.joints, np.float64))
    j = j - root(j).mean(0) * np.array([1.0, 0.0, 1.0])
    poses = _plot(j[np.minimum(frames, len(j) - 1)])
    trail = _plot(root(j[np.minimum(frames, len(j) - 1)]) * np.array([1.0, 0.0, 1.0]))
    lo = np.minimum(poses.reshape(-1, 3).min(0), 0.0) - 0.3
    hi = poses.reshape(-1, 3).max(0) + 0.3
    return _Panel(poses, trail, lo, hi)


def _window(panel: _Panel, i: int | None) -> list[list[float]]:
    """Plot x, y ranges: the whole box, or with ``i`` the window following frame ``i``'s root
    (a motion that travels far would otherwise shrink to a dot)."""
    if i is None:
        half = float((panel.hi - panel.lo)[:2].max()) / 2
        mid = (panel.hi + panel.lo) / 2
    else:
        half, mid = FOLLOW_HALF_M, panel.trail[i]
    return [[float(mid[k] - half), float(mid[k] + half)] for k in range(2)]


def _follows(panel: _Panel) -> bool:
    return float((panel.hi - panel.lo)[:2].max()) / 2 > FOLLOW_HALF_M + 0.5


def _scene(panel: _Panel, first_pose_world: np.ndarray) -> dict:
    """Equal axes over the panel's box (or the following window); the camera in front of the
    body, a little above."""
    rng = _window(panel, 0 if _follows(panel) else None) + [[0.0, float(panel.hi[2])]]
    extent = np.array([r[1] - r[0] for r in rng])
    fwd = _plot(facing(first_pose_world))  # body forward in plot axes (z = 0)
    side = np.array([-fwd[1], fwd[0], 0.0])
    eye = 1.15 * (fwd + 0.5 * side) / np.linalg.norm(fwd + 0.5 * side) + np.array([0, 0, 0.45])
    axis = dict(showbackground=False, showticklabels=False, title="", showspikes=False)
    return dict(
        xaxis=dict(range=rng[0], **axis),
        yaxis=dict(range=rng[1], **axis),
        zaxis=dict(range=rng[2], **axis),
        aspectmode="manual",
        aspectratio=dict(zip("xyz", (extent / extent.max()).tolist(), strict=True)),
        camera=dict(eye=dict(zip("xyz", eye.tolist(), strict=True)), up=dict(x=0, y=0, z=1)),
    )


def _frame_layout(panels: list[_Panel], i: int) -> dict:
    """Per frame, the following windows of the panels that follow their body."""
    out = {}
    for k, p in enumerate(panels):
        if _follows(p):
            x, y = _window(p, i)
            out[f"scene{k + 1 if k else ''}"] = dict(xaxis=dict(range=x), yaxis=dict(range=y))
    return out


def player_figure(motions: Sequence[Motion], title: str = "", max_frames: int = 240) -> go.Figure:
    """The figure of ``write_player`` (motions side by side, one shared time slider)."""
    if not motions:
        raise ValueError("the player needs at least one motion")
    fps = motions[0].fps
    n = max(len(m.joints) for m in motions)
    stride = max(1, int(np.ceil(n / max_frames)))
    frames = np.arange(0, n, stride)
    panels = [_panel(m, frames) for m in motions]
    fig = make_subplots(
        rows=1,
        cols=len(motions),
        specs=[[{"type": "scene"}] * len(motions)],
        subplot_titles=[m.name for m in motions],
        horizontal_spacing=0.01,
    )
    for k, (m, p) in enumerate(zip(motions, panels, strict=True)):
        static = [_floor(p.lo, p.hi), _faint_trail(p.trail)]
        for tr in _dynamic(p.poses[0], p.trail[:1]) + static:
            fig.add_trace(tr, row=1, col=k + 1)
        scene = _scene(p, ground(np.asarray(m.joints, np.float64))[0])
        fig.update_layout({f"scene{k + 1 if k else ''}": scene})
    dynamic = [k * (_DYNAMIC + 2) + i for k in range(len(motions)) for i in range(_DYNAMIC)]
    fig.frames = [
        go.Frame(
            name=str(i),
            traces=dynamic,
            data=[tr for p in panels for tr in _dynamic(p.poses[i], p.trail[: i + 1])],
            layout=_frame_layout(panels, i),
        )
        for i in range(len(frames))
    ]
    _controls(fig, frames, fps, stride, title)
    return fig


def _faint_trail(trail: np.ndarray) -> go.Scatter3d:
    return go.Scatter3d(
        x=trail[:, 0],
        y=trail[:, 1],
        z=trail[:, 2],
        mode="lines",
        line=dict(color="#bbbbbb", width=3),
    )


def _controls(fig: go.Figure, frames: np.ndarray, fps: float, stride: int, title: str) -> None:
    """Play/pause buttons and a time slider; every frame redraws (3D scenes need it)."""
    step_ms = 1000.0 * stride / fps
    play = dict(frame=dict(duration=step_ms, redraw=True), fromcurrent=True, mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), mode="immediate")
    fig.update_layout(
        title=dict(text=title, x=0.5),
        showlegend=False,
        height=560,
        width=max(520, 430 * (len(fig.data) // (_DYNAMIC + 2))),
        margin=dict(l=0, r=0, t=70, b=0),
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                x=0.0,
                y=0.0,
                xanchor="left",
                yanchor="top",
                pad=dict(t=10, r=10),
                buttons=[
                    dict(label="▶ play", method="animate", args=[None, play]),
                    dict(label="❚❚ pause", method="animate", args=[[None], pause]),
                ],
            )
        ],
        sliders=[
            dict(
                x=0.18,
                len=0.8,
                y=0.0,
                yanchor="top",
                ticklen=0,
                font=dict(color="white", size=1),  # no label per step: the current one shows
                currentvalue=dict(prefix="t = ", font=dict(color="#333333", size=14)),
                steps=[
                    dict(
                        label=f"{f / fps:.2f} s",
                        method="animate",
                        args=[
                            [str(i)],
                            dict(frame=dict(duration=0, redraw=True), mode="immediate"),
                        ],
                    )
                    for i, f in enumerate(frames)
                ],
            )
        ],
    )


def write_player(
    path: str | Path, motions: Sequence[Motion], title: str = "", max_frames: int = 240
) -> Path:
    """Write the player as one HTML file with plotly.js inlined (opens offline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = player_figure(motions, title, max_frames)
    fig.write_html(
        path,
        include_plotlyjs=True,
        full_html=True,
        auto_play=False,
        config=dict(displaylogo=False, responsive=True),
    )
    return path
