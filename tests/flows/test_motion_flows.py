"""Clips, lifter training, lifting and evaluation as flows over a real lake.

Keypoints come from real mocap projected through a known camera (so the test needs no video
decoding), written exactly as the extract flow writes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import fake_video, lifted_lake

from videomdm.flows.motion import clips_flow, eval_lifter_flow, lift_flow, train_lifter_flow
from videomdm.models.motion.mocap import load_mocap_dir
from videomdm.models.motion.rays import keypoint_consistent
from videomdm.models.motion.skeleton import body_size_factor
from videomdm.storage import Lake, run_sql
from videomdm.storage.codecs import motion_sample

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def walk(assets):
    clips = load_mocap_dir(assets / "mocap" / "cmu_bvh_subject131", fps=30)
    return max(clips, key=lambda c: len(c.joints))


def test_clips_train_lift_eval(lake_root, walk, assets):
    vid = fake_video(lake_root, walk.joints)
    r = clips_flow(lake=lake_root)
    assert r.clips == 1
    clip = run_sql(Lake(lake_root), "select * from clips").to_pylist()[0]
    assert clip["video_id"] == vid and clip["n_frames"] == len(walk.joints)
    assert len(clip["u"]) == clip["n_frames"] * 34 and clip["filled_frames"] > 0
    assert clips_flow(lake=lake_root).videos == 0  # idempotent

    mocap = str(assets / "mocap" / "cmu_bvh_subject131")
    trained = train_lifter_flow([mocap], steps=40, lake=lake_root)
    run = run_sql(Lake(lake_root), "select * from runs").to_pylist()[0]
    assert run["kind"] == "train-lifter" and run["status"] == "ok"
    assert json.loads(run["metrics_json"])["val_clips"]
    assert trained.checkpoint_uri and "/checkpoints/lifter/" in trained.checkpoint_uri

    lifted = lift_flow(lake=lake_root)
    assert lifted.motions == 1
    m = run_sql(Lake(lake_root), "select * from motions").to_pylist()[0]
    joints = np.asarray(m["joints"]).reshape(-1, 17, 3)
    assert joints.shape[0] == clip["n_frames"] and np.isfinite(joints).all()
    R = np.asarray(m["cam_R"]).reshape(3, 3)  # noqa: N806
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-4) and np.linalg.det(R) > 0
    assert lift_flow(lake=lake_root).videos == 0  # idempotent

    scores = eval_lifter_flow([mocap], split="all", lake=lake_root)
    for k in (
        "mpjpe_mm",
        "pa_mpjpe_mm",
        "accel_error",
        "noisy_mpjpe_mm",
        "noisy_pa_mpjpe_mm",
        "noisy_accel_error",
    ):
        assert np.isfinite(scores[k]), k


def test_lift_without_a_lifter_is_a_clear_error(lake_root):
    with pytest.raises(ValueError, match="train-lifter"):
        lift_flow(lake=lake_root)


def test_videomdm_train_resume_generate_reconstruct(lake_root, walk, assets, tmp_path):
    from videomdm.flows.generate import generate_flow, reconstruct_flow
    from videomdm.flows.train import train_flow

    lifted_lake(lake_root, walk.joints, str(assets / "mocap" / "cmu_bvh_subject131"))
    lake = Lake(lake_root)

    first = train_flow(steps=3, lake=lake_root)
    run = run_sql(lake, "select * from runs where kind = 'train'").to_pylist()[0]
    config = json.loads(run["config_json"])
    assert run["status"] == "ok" and run["checkpoint_uri"] == first.checkpoint
    assert f"/checkpoints/videomdm/{first.run_id}.pt" in first.checkpoint
    assert config["lineage"]["lifter_id"].startswith("lifter-") and config["lineage"]["clip_ids"]
    resumed = train_flow(steps=5, lake=lake_root, resume=first.run_id)
    assert resumed.run_id == first.run_id and resumed.step == 5

    gen = generate_flow("a person walks", n=2, seconds=1.0, out=str(tmp_path), lake=lake_root)
    motion = np.load(gen.motions[0].npy)
    assert motion.shape == (30, 17, 3) and np.isfinite(motion).all()
    assert all((tmp_path / g.animation).exists() for g in gen.motions)
    assert gen.player is not None and "sample 1" in Path(gen.player).read_text()
    assert run_sql(lake, "select count(*) n from generations").column("n")[0].as_py() == 2
    assert set(gen.stats) == {"joint_speed_mps", "bone_length_cv", "spread_m"}
    assert all(np.isfinite(v) and v >= 0 for v in gen.stats.values())

    clip_id = run_sql(lake, "select clip_id from clips").column("clip_id")[0].as_py()
    for _ in range(2):  # re-running replaces the reconstruction
        reconstruct_flow(clip_id, lake=lake_root)
    rows = run_sql(lake, "select * from motions where lifter_id = 'videomdm'").to_pylist()
    assert len(rows) == 1 and np.isfinite(rows[0]["joints"]).all()
    # stored in the body-size gauge: the lifted clip's camera scaled with its body
    lifted = run_sql(
        lake,
        "select * from motions where clip_id = ? and lifter_id != 'videomdm'",
        params=[clip_id],
    ).to_pylist()[0]
    clip_row = run_sql(lake, "select * from clips where clip_id = ?", params=[clip_id])
    sample = motion_sample(lifted | clip_row.to_pylist()[0] | {"text": ""})
    hz = config["train"]["x0_keypoints_hz"]
    prepared = keypoint_consistent(sample.joints, sample.R, sample.t, sample.u, sample.conf, hz)
    ratio = np.asarray(rows[0]["cam_t"]) / np.asarray(lifted["cam_t"])
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)  # one scale for the camera...
    # ...the gauge of the clip prepared from its keypoints (data.training_motion): its body's
    # size comes from the keypoints at the fitted depth, not from the (here 20-step) lifter's
    k = body_size_factor(prepared)
    assert abs(ratio[0] / k - 1) < 0.01, (ratio[0], k)
    np.testing.assert_allclose(rows[0]["cam_R"], lifted["cam_R"])
    with pytest.raises(ValueError, match="no clip"):
        reconstruct_flow("abc123", lake=lake_root)


def test_known_intrinsics_reach_clips_and_motions(lake_root, walk, assets, tmp_path):
    """A camera file (--intrinsics) or a sidecar beside the video sets the clip's intrinsics
    and undistorts its keypoints; the lifted motion carries them."""
    import cv2

    from videomdm.storage.lake import rows_to_table

    vid = fake_video(lake_root, walk.joints)
    lake = Lake(lake_root)
    folder = tmp_path / "videos"
    folder.mkdir()
    row = lake.read("videos").to_pylist()[0]
    lake.merge("videos", rows_to_table("videos", [row | {"uri": str(folder / "walk.mp4")}]), "t")
    (folder / "walk.intrinsics.toml").write_text(
        "fx = 700.0\nfy = 710.0\ncx = 330.0\ncy = 250.0\nsize = [640, 480]\n"
        "distortion = [0.1, -0.05, 0.0, 0.0]\n"
    )
    clips_flow(lake=lake_root)
    clip = run_sql(lake, "select * from clips").to_pylist()[0]
    assert clip["intrinsics"] == [700.0, 710.0, 330.0, 250.0, 640.0, 480.0]
    kp = run_sql(lake, "select kp_x, kp_y from keypoints where frame = 0").to_pylist()[0]
    px = np.stack([kp["kp_x"], kp["kp_y"]], -1)[:, None]
    k = np.array([[700.0, 0, 330.0], [0, 710.0, 250.0], [0, 0, 1]])
    want = cv2.undistortPoints(px, k, np.array([0.1, -0.05, 0.0, 0.0]))[:, 0]
    u = np.asarray(clip["u"]).reshape(-1, 17, 2)[0]  # frame 0 of the clip is source frame 0
    np.testing.assert_allclose(u, want, atol=1e-5)

    train_lifter_flow([str(assets / "mocap" / "cmu_bvh_subject131")], steps=5, lake=lake_root)
    lift_flow(lake=lake_root)
    motion = run_sql(lake, "select intrinsics from motions").to_pylist()[0]
    assert motion["intrinsics"] == clip["intrinsics"]

    # --intrinsics with one camera: every video of the collection gets it
    other = tmp_path / "phone.json"
    other.write_text(json.dumps({"fx": 900, "fy": 900, "cx": 320, "cy": 240}))
    lake2 = str(tmp_path / "lake2")
    fake_video(lake2, walk.joints)
    clips_flow(lake=lake2, intrinsics=str(other))
    clip2 = run_sql(Lake(lake2), "select intrinsics from clips").to_pylist()[0]
    assert clip2["intrinsics"][:4] == [900.0, 900.0, 320.0, 240.0]
    assert vid == clip["video_id"]
