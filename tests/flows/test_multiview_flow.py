"""`videomdm evaluate --multiview` on the real calibrated recording, cut to its first frames:
ingest and extract through the real flows, people matched and triangulated, each view
lifted and scored, a VideoMDM reconstruction, the picture, the report and the run row."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from videomdm.flows.motion import train_lifter_flow
from videomdm.flows.multiview import MultiviewRequest, evaluate_multiview_flow
from videomdm.storage import Lake, run_sql

FRAMES = 24  # 0.4 s at 60 fps: 12 frames per clip at 30 fps


@pytest.fixture(scope="module")
def short_recording(assets, tmp_path_factory) -> Path:
    """The first FRAMES frames of each view (re-encoded) and the real calibration, laid out
    as a Pose2Sim project (``videos/``, ``calibration/``); cam01 is cut to 1080 of the
    calibrated 1088 pixels across, as Pose2Sim's single-person demo ships two of its views."""
    src = assets / "multiview" / "pose2sim_multiperson"
    if not src.exists():
        pytest.skip(f"{src} is absent")
    dst = tmp_path_factory.mktemp("multiview") / "recording"
    (dst / "videos").mkdir(parents=True)
    (dst / "calibration").mkdir()
    shutil.copy(src / "Calib.qca.txt", dst / "calibration" / "Calib.qca.txt")
    for video in sorted(src.glob("cam*.mp4")):
        width = 1080 if video.stem == "cam01" else 1088
        with av.open(str(video)) as inp, av.open(str(dst / "videos" / video.name), "w") as out:
            stream = out.add_stream("mpeg4", rate=60)
            stream.width, stream.height, stream.pix_fmt = width, 1920, "yuv420p"
            stream.options = {"qscale": "2"}
            for i, frame in enumerate(inp.decode(video=0)):
                if i == FRAMES:
                    break
                rgb = frame.to_ndarray(format="rgb24")[:, :width]
                cut = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                out.mux(stream.encode(cut.reformat(format="yuv420p")))
            out.mux(stream.encode(None))
    return dst


def _small_model(path: Path, mocap: list[np.ndarray]) -> str:
    """A VideoMDM checkpoint trained for two steps on real mocap seen by one camera."""
    from videomdm.models.mdm.config import DenoiserConfig, TrainConfig
    from videomdm.models.mdm.trainer import Trainer, write_state
    from videomdm.models.motion.cameras import look_at, project
    from videomdm.models.motion.sample import MotionSample

    j = mocap[0].astype(np.float32)
    R, t = look_at(j[0, 11] + np.array([0.0, 0.0, 5.0]), j[0, 11])  # noqa: N806
    u, _ = project(j @ R.T + t)
    sample = MotionSample(j, u.astype(np.float32), np.ones(u.shape[:2], np.float32), R, t)
    net = DenoiserConfig(width=32, n_layers=1, n_heads=2, ff_dim=64, cond_mode="none")
    cfg = TrainConfig(window=24, batch_size=2, steps=2, amp="none", warmup_steps=1)
    trainer = Trainer([sample], np.zeros((1, 384), np.float32), net, cfg)
    trainer.fit()
    write_state(trainer.state_dict(), str(path))
    return str(path)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_multiview_yardstick_on_a_few_frames(short_recording, lake_root, assets, mocap, tmp_path):
    train_lifter_flow([str(assets / "mocap" / "cmu_bvh_subject131")], steps=20, lake=lake_root)
    out = tmp_path / "out"
    model = _small_model(tmp_path / "tiny.pt", mocap)
    req = MultiviewRequest(str(short_recording), model=model, sample_steps=3, out=str(out))
    r = evaluate_multiview_flow(req, lake=lake_root)
    assert set(r.offsets) == {"cam01", "cam02", "cam03", "cam04"} and r.offsets["cam01"] == 0
    assert all(abs(o) <= 10 for o in r.offsets.values())
    # two people are seen by every view, each scored against the other three views
    people = {(q["view"], q["person"]) for q in r.quality}
    assert len(people) == 8 and all(len(q["source_views"]) == 3 for q in r.quality)
    assert all(q["reprojection_px"] < 40 and q["known_joints"] > 0.5 for q in r.quality)
    methods = {(s["view"], s["method"]) for s in r.summary}
    assert methods == {(v, m) for v in r.offsets for m in ("lifter", "videomdm")}
    for s in r.scores:
        assert s["frames"] >= 6 and 0 < s["pa_mpjpe_mm"] < 1000 and np.isfinite(s["accel_error"])
        assert s["pa_mpjpe_mm"] <= s["mpjpe_seq_mm"] + 1e-6  # a similarity per frame fits better
    assert set(r.pictures) == set(r.offsets) and all(
        Path(p).stat().st_size for p in r.pictures.values()
    )
    report = json.loads(Path(r.report).read_text())
    assert report["summary"] == r.summary and len(report["people"]) >= 2
    run = run_sql(Lake(lake_root), "select * from runs where kind = 'evaluate'").to_pylist()
    assert [x["run_id"] for x in run] == [r.run_id]

    # the command line, one view, default camera, on the same lake: extraction is reused
    env = {**os.environ, "VIDEOMDM_LAKE": lake_root}
    args = ["evaluate", "--multiview", str(short_recording), "--view", "cam02"]
    args += ["--camera", "default", "--format", "json", "-o", str(tmp_path / "cli")]
    cmd = [sys.executable, "-m", "videomdm.cli", *args]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    cli = json.loads(p.stdout.strip().splitlines()[-1])
    assert {s["view"] for s in cli["summary"]} == {"cam02"}
    assert cli["offsets"] == r.offsets


@pytest.mark.usefixtures("prefect_harness")
def test_bad_inputs_give_one_line_naming_the_file(assets, tmp_path, monkeypatch):
    """Checked before any video is read: the views here are empty files."""
    from typer.testing import CliRunner

    from videomdm.cli import app
    from videomdm.errors import UserError

    monkeypatch.setenv("VIDEOMDM_LAKE", str(tmp_path / "lake"))
    recording = tmp_path / "recording"
    recording.mkdir()
    shutil.copy(assets / "multiview" / "pose2sim_multiperson" / "Calib.qca.txt", recording)
    for cam in ("cam01", "cam02", "cam03", "cam04"):
        (recording / f"{cam}.mp4").touch()

    def run(folder: Path, *extra: str) -> str:
        """The user error the command ends with (``main()`` prints it as one line)."""
        r = CliRunner().invoke(app, ["evaluate", "--multiview", str(folder), *extra])
        assert isinstance(r.exception, UserError), (r.exception, r.output)
        assert "\n" not in str(r.exception) and "Traceback" not in r.output
        return str(r.exception)

    broken = tmp_path / "broken"
    shutil.copytree(recording, broken)
    (broken / "Calib.qca.txt").write_text("<calibration><cameras")
    assert "Calib.qca.txt: does not parse" in run(broken)
    missing = tmp_path / "missing"
    shutil.copytree(recording, missing)
    (missing / "cam03.mp4").unlink()
    line = run(missing)
    assert "Calib.qca.txt" in line and "camera cam03 has no video" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"{empty}: no calibration files" in run(empty)
    assert "no such folder" in run(tmp_path / "nowhere")
    extra = tmp_path / "extra"
    shutil.copytree(recording, extra)
    (extra / "phone.mp4").touch()
    assert "phone.mp4: no camera 'phone' in" in run(extra)
    # a sound folder: what is missing in the lake or the options fails before a video is read
    assert "no view 'cam09'; the views are" in run(recording, "--view", "cam09")
    assert "no trained lifter in the lake" in run(recording)
    assert "--lifter 'nope' is neither a checkpoint file" in run(recording, "--lifter", "nope")


def test_a_view_must_have_its_calibrated_size(assets):
    """A codec's crop of its padded size (1080 shown of 1088 coded) keeps the calibration's
    pixels; any other size is one error naming the video."""
    from videomdm.errors import UserError
    from videomdm.models.motion.calibration import load_calibration
    from videomdm.tasks.multiview import check_video_size

    cam = load_calibration(assets / "multiview" / "pose2sim_multiperson" / "Calib.qca.txt")["cam01"]
    video = {"uri": "/data/cam01.mp4", "width": 1088, "height": 1920, "rotation": 0}
    check_video_size(video, cam)
    check_video_size(video | {"width": 1080}, cam)
    check_video_size(video | {"width": 1920, "height": 1080, "rotation": 90}, cam)  # upright
    for bad in ({"width": 1072}, {"width": 1100}, {"width": 1920, "height": 1088}):
        with pytest.raises(
            UserError, match=r"^/data/cam01.mp4: \d+x\d+, calibrated for 1088x1920$"
        ):
            check_video_size(video | bad, cam)
