"""Load all shared mocap, print a load-time table per source, draw docs/mocap_<folder>.png.

    python benchmarks/mocap_figures.py [--assets DIR] [--out docs] [--fps 30]

One figure per asset folder, from one representative clip, drawn by
videomdm.models.viz.animation.plot_frames (facing the viewer: nose towards you, blue = left
on the image's right). Also docs/player.png: the HTML motion player (three walks side by side)
as headless Chromium shows it.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections import defaultdict
from pathlib import Path

from videomdm.models.motion.mocap import load_mocap_dir, load_mocap_file
from videomdm.models.viz.animation import plot_frames

log = logging.getLogger("mocap_figures")

# folder -> the clip drawn for it (a walk where the source has one)
FIGURE_CLIPS = {
    "cmu_bvh_subject131": "131_01.bvh",
    "animated_drawings_bvh": "fair1_wave_hello.bvh",
    "bandai_namco_ds1": "dataset-1_walk_normal_001.bvh",
    "cmu_iclone_bvh": "002_01.bvh",
    "deepmimic_motions": "humanoid3d_walk.txt",
    "humanml3d_sample": "new_joints__012314.npy",
}


def load_table(mocap: Path, fps: float) -> None:
    """Print clips, frames and seconds per source folder, and the total."""
    total_start = time.perf_counter()
    rows = []
    for folder in sorted(p for p in mocap.iterdir() if p.is_dir()):
        start = time.perf_counter()
        clips = load_mocap_dir(folder, fps=fps)
        secs = time.perf_counter() - start
        per_source: dict[str, int] = defaultdict(int)
        for c in clips:
            per_source[c.source] += 1
        frames = sum(len(c.joints) for c in clips)
        rows.append((folder.name, len(clips), frames, len(clips.failures), secs, dict(per_source)))
    total = time.perf_counter() - total_start
    print(f"{'folder':<24}{'clips':>6}{'frames':>8}{'failed':>7}{'seconds':>9}  sources")
    for name, n, frames, failed, secs, sources in rows:
        print(f"{name:<24}{n:>6}{frames:>8}{failed:>7}{secs:>9.2f}  {sources}")
    print(
        f"{'all':<24}{sum(r[1] for r in rows):>6}{sum(r[2] for r in rows):>8}"
        f"{sum(r[3] for r in rows):>7}{total:>9.2f}"
    )


def draw_figures(mocap: Path, out: Path, fps: float) -> None:
    for folder, file in FIGURE_CLIPS.items():
        path = mocap / folder / file
        if not path.exists():
            log.warning("missing %s, no figure for %s", path, folder)
            continue
        clip = load_mocap_file(path, fps=fps)
        assert clip is not None
        title = f"{folder}: {clip.name} ({clip.source}, {clip.fps:g} fps) - {clip.text}"
        png = plot_frames(clip.joints, out / f"mocap_{folder}.png", title=title)
        print(f"wrote {png}")


PLAYER_CLIPS = (
    ("bandai_namco_ds1", "dataset-1_walk_normal_001.bvh"),
    ("cmu_bvh_subject131", "131_01.bvh"),
    ("deepmimic_motions", "humanoid3d_walk.txt"),
)
CHROMIUM = (
    "chromium --headless --no-sandbox --disable-gpu --use-angle=swiftshader "
    "--enable-unsafe-swiftshader --disable-quic --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync --virtual-time-budget=10000"
).split()


def draw_player(mocap: Path, out: Path, fps: float) -> None:
    """The player of three mocap walks, rendered by headless Chromium into docs/player.png."""
    import subprocess
    import tempfile

    from videomdm.models.viz.player import Motion, write_player

    motions = []
    for folder, file in PLAYER_CLIPS:
        clip = load_mocap_file(mocap / folder / file, fps=fps)
        assert clip is not None
        motions.append(Motion(f"{folder}: {clip.name}", clip.joints[: int(6 * fps)], fps))
    with tempfile.TemporaryDirectory() as tmp:
        page = write_player(Path(tmp) / "player.html", motions, "mocap walks in the player")
        shot = out / "player.png"
        subprocess.run(
            [*CHROMIUM, f"--user-data-dir={tmp}/profile", f"--screenshot={shot}"]
            + ["--window-size=1300,600", page.as_uri()],
            check=True,
            capture_output=True,
        )
    print(f"wrote {shot}")


def main() -> None:
    default_assets = Path(__file__).resolve().parents[2] / "shared" / "assets"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--assets", type=Path, default=Path(os.environ.get("VIDEOMDM_ASSETS", default_assets))
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load_table(args.assets / "mocap", args.fps)
    draw_figures(args.assets / "mocap", args.out, args.fps)
    draw_player(args.assets / "mocap", args.out, args.fps)


if __name__ == "__main__":
    main()
