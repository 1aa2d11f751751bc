"""The multi-view yardstick's picture: per person, the evaluated view's frame with its
detected keypoints and the truth projected into it, then the truth, the lifter and VideoMDM
side by side in 3D at the same moment (faint: a third of a second before and after)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from videomdm.models.evaluation.multiview import Scene  # noqa: E402
from videomdm.models.evaluation.multiview_lift import ViewClip, ViewEvaluation  # noqa: E402
from videomdm.models.evaluation.pose_scores import motion_scores, similarity  # noqa: E402
from videomdm.models.motion.skeleton import LIMBS  # noqa: E402
from videomdm.models.viz.animation import _limb_colour  # noqa: E402


def _aligned(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``pred`` moved by the one similarity that fits it to the truth over the clip."""
    ok = np.isfinite(truth).all(-1) & np.isfinite(pred).all(-1)
    s, rot, t = similarity(
        np.where(ok[..., None], pred, 0).reshape(-1, 3),
        np.where(ok[..., None], truth, 0).reshape(-1, 3),
        ok.reshape(-1).astype(float),
    )
    return s * pred @ rot.T + t


def _draw_3d(ax, motion: np.ndarray, k: int, title: str, centre: np.ndarray) -> None:
    """Camera-frame joints (x right, y down, z forward) shown with up as up."""
    for f, alpha in ((k - 20, 0.2), (k + 20, 0.2), (k, 1.0)):
        if not 0 <= f < len(motion):
            continue
        p = motion[f] - centre
        for a, b in LIMBS:
            if np.isfinite(p[[a, b]]).all():
                xs, ys, zs = p[[a, b], 0], p[[a, b], 2], -p[[a, b], 1]
                ax.plot(xs, ys, zs, color=_limb_colour(a, b), alpha=alpha, lw=2)
    r = 1.0
    ax.set(xlim=(-r, r), ylim=(-r, r), zlim=(-r, r), xticks=[], yticks=[], zticks=[])
    ax.view_init(elev=10, azim=-90)  # from the camera's side, a little above
    ax.set_title(title, fontsize=9)


def _draw_frame(ax, image: np.ndarray | None, det: np.ndarray, proj: np.ndarray) -> None:
    if image is not None:
        ax.imshow(image)
    for pts, colour, label in ((det, "white", "detected"), (proj, "lime", "truth projected")):
        for a, b in LIMBS:
            if np.isfinite(pts[[a, b]]).all():
                ax.plot(pts[[a, b], 0], pts[[a, b], 1], color=colour, lw=1.5)
        ax.scatter(pts[:, 0], pts[:, 1], s=6, color=colour, label=label)
    ax.legend(loc="lower left", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_view(
    scene: Scene,
    evaluation: ViewEvaluation,
    preds: dict[str, list[np.ndarray]],
    images: dict[int, np.ndarray],
    path: str | Path,
) -> Path:
    """One row per person (its longest clip), at the clip's middle frame. ``preds``: each
    method's camera-frame motions, one per clip of ``evaluation``; ``images``: the view's
    RGB frames by source frame number (a missing one leaves the frame panel blank)."""
    rows = _longest_clips(evaluation)
    cols = 2 + len(preds)
    fig = plt.figure(figsize=(3.2 * cols, 3.6 * len(rows)))
    view = scene.view_index(evaluation.view)
    cam = scene.views[view].camera
    for r, (i, clip) in enumerate(rows):
        k = len(clip.truth_cam) // 2
        src = clip.clip.frame_start + round(k * scene.views[view].fps / clip.clip.fps)
        truth = clip.truth_cam
        R, t = cam.pose()  # noqa: N806
        proj, _ = cam.project((truth[k] - t) @ R)
        det = scene.keypoints[clip.person][view][src]
        ax = fig.add_subplot(len(rows), cols, r * cols + 1)
        _draw_frame(ax, images.get(src), np.where(det[:, 2:] > 0.3, det[:, :2], np.nan), proj)
        ax.set_title(f"{evaluation.view} frame {src}, person {clip.person}", fontsize=9)
        centre = np.nanmean(truth[k], axis=0)
        ax = fig.add_subplot(len(rows), cols, r * cols + 2, projection="3d")
        _draw_3d(ax, truth, k, "truth (other views)", centre)
        for c, (method, ps) in enumerate(preds.items()):
            s = motion_scores(ps[i], truth)
            ax = fig.add_subplot(len(rows), cols, r * cols + 3 + c, projection="3d")
            title = f"{method}: PA {s.pa_mpjpe_mm:.0f}, seq {s.mpjpe_seq_mm:.0f} mm"
            _draw_3d(ax, _aligned(ps[i], truth), k, title, centre)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _longest_clips(evaluation: ViewEvaluation) -> list[tuple[int, ViewClip]]:
    best: dict[int, tuple[int, ViewClip]] = {}
    for i, c in enumerate(evaluation.clips):
        if c.person not in best or len(c.clip.u) > len(best[c.person][1].clip.u):
            best[c.person] = (i, c)
    return [best[p] for p in sorted(best)]


def frames_wanted(scene: Scene, evaluation: ViewEvaluation) -> list[int]:
    """The source frames ``draw_view`` shows."""
    view = scene.view_index(evaluation.view)
    return [
        c.clip.frame_start + round(len(c.truth_cam) // 2 * scene.views[view].fps / c.clip.fps)
        for _, c in _longest_clips(evaluation)
    ]
