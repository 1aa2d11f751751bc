"""The motion player: a self-contained HTML file that real headless Chromium renders."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from browser import run_chromium
from PIL import Image

from videomdm.models.viz.player import Motion, player_figure, write_player

# Reads the plot back from the page once plotly drew it: panels, traces, frames, and whether
# each 3D scene got a WebGL canvas.
CHECK = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const gd = document.querySelector(".js-plotly-plot");
  const before = Array.from(gd.data[0].x.slice(0, 2));
  // scrub as the slider does; the data is read a moment later, not when animate's promise
  // settles (under Chromium's virtual time that can be only when the time budget runs out)
  Plotly.animate(gd, ["45"], {frame: {duration: 0, redraw: true}, mode: "immediate"});
  setTimeout(() => {
    const out = document.createElement("pre");
    out.id = "check";
    out.textContent = JSON.stringify({
      traces: gd.data.length,
      frames: gd._transitionData._frames.length,
      scenes: Object.keys(gd._fullLayout).filter(k => /^scene\\d*$/.test(k)).length,
      canvases: document.querySelectorAll(".gl-container canvas").length,
      before: before,
      after: Array.from(gd.data[0].x.slice(0, 2)),
    });
    document.body.appendChild(out);
  }, 1000);
}, 500));
</script>
"""


def _motions(mocap, n=2):
    return [Motion(f"clip {i}", mocap[i][:90] + np.array([0.0, 1.0, 0.0]), 30.0) for i in range(n)]


def test_figure_panels_frames_and_ground(mocap):
    fig = player_figure(_motions(mocap, 3), "three")
    assert len(fig.data) == 3 * 7  # per panel: 3 limb groups, joints, trail, floor, whole trail
    assert len(fig.frames) == 90
    joints = fig.data[3]  # the first panel's joints at frame 0 (plot z is up)
    assert min(joints.z) < 0.15  # lifted by 1 m in world, grounded back onto the floor
    scene = fig.layout.scene
    spans = [scene[a].range[1] - scene[a].range[0] for a in ("xaxis", "yaxis", "zaxis")]
    ratio = [scene.aspectratio[a] for a in "xyz"]
    assert np.allclose(np.array(spans) / max(spans), ratio)  # equal axes


def test_long_motions_are_strided_to_max_frames(mocap):
    long = Motion("long", np.concatenate([mocap[0]] * 4), 30.0)
    assert len(player_figure([long], max_frames=100).frames) <= 100


@pytest.mark.slow
def test_player_renders_in_headless_chromium(mocap, tmp_path):
    page = write_player(tmp_path / "player.html", _motions(mocap), "two clips")
    html = page.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", html)  # nothing fetched at view time
    assert len(html) > 3_000_000  # plotly.js is inlined
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", CHECK + "</body>"))
    for budget in (30_000, 90_000):  # virtual time, counted from the start of the load
        dom = run_chromium(probe, tmp_path / f"profile{budget}", "--dump-dom", budget_ms=budget)
        if found := re.search(r'<pre id="check">(.*?)</pre>', dom):
            break
    assert found, "plotly did not draw the figure"
    check = json.loads(found.group(1))
    assert check["traces"] == 14 and check["frames"] == 90 and check["scenes"] == 2
    assert check["canvases"] >= 2  # each 3D scene drawn by WebGL
    assert len(check["after"]) == 2 and check["after"] != check["before"]  # scrubbed to 1.5 s

    shot = tmp_path / "player.png"
    run_chromium(page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1000,600")
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)  # right limbs
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 80)  # left limbs
    assert red.sum() > 200 and blue.sum() > 200  # the skeletons were drawn by WebGL
