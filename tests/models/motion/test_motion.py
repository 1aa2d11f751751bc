"""Mocap loaders (real assets), the canonical skeleton, cameras and the 2D noise model."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from videomdm.models.motion import bvh, cameras, mocap, rigs
from videomdm.models.motion.skeleton import (
    FLIP_PERM,
    JOINT_INDEX,
    LIMBS,
    NUM_JOINTS,
    PARENTS,
    bone_lengths,
    facing,
    flip_lr,
    root,
)

ASSETS = Path(os.environ["VIDEOMDM_ASSETS"])
MOCAP = ASSETS / "mocap"
J = JOINT_INDEX
UP = np.array([0.0, 1.0, 0.0])

# one clip per source (and both iClone hierarchies); walks carry a travel direction
CLIPS = {
    "cmu_bvh_subject131/131_01.bvh": ("cmu_bvh", True),
    "animated_drawings_bvh/fair1_wave_hello.bvh": ("mixamo_bvh", False),
    "animated_drawings_bvh/cmu1_jumping_jacks.bvh": ("cmu_bvh", False),
    "bandai_namco_ds1/dataset-1_walk_normal_001.bvh": ("bandai_bvh", True),
    "cmu_iclone_bvh/002_01.bvh": ("iclone_bvh", True),  # extra Z-up root
    "cmu_iclone_bvh/005_01.bvh": ("iclone_bvh", False),
    "deepmimic_motions/humanoid3d_walk.txt": ("deepmimic", True),
    "humanml3d_sample/new_joints__012314.npy": ("humanml3d", False),
}
# bones a body keeps at constant length: upper arms, forearms, thighs, shins, pelvis
LIMB_BONES = ((7, 5), (8, 6), (9, 7), (10, 8), (13, 11), (14, 12), (15, 13), (16, 14), (12, 11))


def _need(rel: str) -> Path:
    path = MOCAP / rel
    if not path.exists():
        pytest.skip(
            f"{path} is absent: these tests need the shared mocap assets (set VIDEOMDM_ASSETS)"
        )
    return path


@pytest.fixture(scope="module")
def all_clips() -> tuple[mocap.MocapClipList, float]:
    _need(".")
    start = time.perf_counter()
    clips = mocap.load_mocap_dir(MOCAP)
    return clips, time.perf_counter() - start


# --- skeleton ---------------------------------------------------------------------------


def test_skeleton_tables_consistent() -> None:
    assert len(PARENTS) == len(FLIP_PERM) == NUM_JOINTS == 17
    assert sorted(FLIP_PERM) == list(range(17))
    assert all(FLIP_PERM[FLIP_PERM[i]] == i for i in range(17))
    assert sum(p < 0 for p in PARENTS) == 1
    for j in range(17):  # every joint reaches the root: a tree
        seen = set()
        while j >= 0:
            assert j not in seen
            seen.add(j)
            j = PARENTS[j]
    assert all(0 <= a < 17 and 0 <= b < 17 for a, b in LIMBS)


def test_flip_lr_mirrors_and_is_an_involution() -> None:
    x = np.random.default_rng(0).normal(size=(5, 17, 3))
    y = flip_lr(x)
    assert np.allclose(y[:, J["left_wrist"], 0], -x[:, J["right_wrist"], 0])
    assert np.allclose(y[:, J["left_wrist"], 1:], x[:, J["right_wrist"], 1:])
    assert np.allclose(flip_lr(y), x)
    assert np.allclose(root(y)[:, 0], -root(x)[:, 0])
    assert bone_lengths(x).shape == (5, 16)


# --- mocap ------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", list(CLIPS))
def test_clip_is_a_plausible_upright_human(rel: str) -> None:
    source, is_walk = CLIPS[rel]
    clip = mocap.load_mocap_file(_need(rel))
    assert clip is not None and clip.source == source and clip.fps == 30.0
    j = clip.joints
    assert j.dtype == np.float32 and j.shape[1:] == (17, 3) and len(j) > 10
    assert np.isfinite(j).all()
    # stature of the most upright frame: eye level above the ankle joints, plus the ankle
    # joint's height over the floor (~8 cm) and the crown above the eyes (~12 cm)
    stature = (j[:, 1:3, 1].max(axis=1) - j[:, 15:17, 1].min(axis=1)).max() + 0.2
    assert 1.4 < stature < 2.0, stature
    f0 = j[0]
    head, hips, ankles = f0[:5, 1].mean(), f0[11:13, 1].mean(), f0[15:17, 1].mean()
    if is_walk:
        assert head > hips > ankles
    lengths = bone_lengths(j, LIMB_BONES)  # (T, 9)
    assert (lengths.std(axis=0) < 0.02 * lengths.mean(axis=0)).all()
    # not mirrored: the nose is in front of the ears along the body's facing, which comes
    # from the left/right joints, so a mirrored body would look backwards
    nose_dir = j[:, J["nose"]] - 0.5 * (j[:, J["left_ear"]] + j[:, J["right_ear"]])
    assert np.median(np.sum(nose_dir * facing(j), axis=-1)) > 0.03


@pytest.mark.parametrize("rel", [r for r, (_, walk) in CLIPS.items() if walk])
def test_walks_keep_left_on_the_left(rel: str) -> None:
    clip = mocap.load_mocap_file(_need(rel))
    assert clip is not None
    j = clip.joints.astype(np.float64)
    travel = root(j)[-1] - root(j)[0]
    travel[1] = 0.0
    assert np.linalg.norm(travel) > 0.5  # it walks
    person_left = np.cross(UP, travel / np.linalg.norm(travel))
    shoulders = j[:, J["left_shoulder"]] - j[:, J["right_shoulder"]]
    hips = j[:, J["left_hip"]] - j[:, J["right_hip"]]
    assert np.mean(shoulders @ person_left > 0) > 0.8
    assert np.mean(hips @ person_left > 0) > 0.8
    nose = j[:, J["nose"]] - 0.5 * (j[:, J["left_ear"]] + j[:, J["right_ear"]])
    assert np.mean(nose @ (travel / np.linalg.norm(travel)) > 0) > 0.8


TOES = {
    "cmu_bvh": ("LeftToe", "RightToe"),
    "mixamo_bvh": ("LeftToeBase", "RightToeBase"),
    "bandai_bvh": ("Toes_L", "Toes_R"),
    "iclone_bvh": ("CC_Base_L_ToeBase", "CC_Base_R_ToeBase"),
}


@pytest.mark.parametrize("rel", [r for r in CLIPS if r.endswith((".bvh", ".npy"))])
def test_feet_point_where_the_body_faces(rel: str) -> None:
    """Chirality against the source's own toes, which no mapping table touches."""
    path = _need(rel)
    if path.suffix == ".npy":
        smpl = np.load(path).astype(np.float64)
        toes = smpl[:, [10, 11]] - smpl[:, [7, 8]]  # SMPL feet minus ankles
        j = mocap.load_humanml3d(path, fps=20.0).joints  # native rate: same frames
    else:
        motion = bvh.read_bvh(path)
        rig = mocap.detect_rig(motion.skeleton.names)
        pos, _ = bvh.forward_kinematics(motion, [*TOES[rig.source], *rig.body[-2:]])
        if rig.z_up:
            pos = pos @ mocap.Z_UP_TO_Y_UP.T
        toes = pos[:, :2] - pos[:, 2:]
        j = mocap.bvh_to_canonical(motion, rig)
    along = np.sum(toes.sum(axis=1) * facing(j), axis=-1)
    assert np.mean(along > 0) > 0.8


def test_all_sources_load_fast_without_failures(
    all_clips: tuple[mocap.MocapClipList, float],
) -> None:
    clips, seconds = all_clips
    assert seconds < 30.0
    sources = {c.source for c in clips}
    assert {
        "cmu_bvh",
        "mixamo_bvh",
        "bandai_bvh",
        "iclone_bvh",
        "deepmimic",
        "humanml3d",
    } <= sources
    assert clips.failures == []
    assert len(clips) >= 270
    texts = {c.name: c.text for c in clips}
    assert texts["dataset-1_walk-left_tired_001"] == "walk left (tired)"
    assert texts["002_01"] == "walk"  # CMU_data.csv
    assert texts["131_03"] == "Start Hop Stop"  # the folder's README
    assert texts["humanoid3d_backflip"] == "backflip"


def test_resampling_follows_fps() -> None:
    path = _need("cmu_bvh_subject131/131_02.bvh")
    src = bvh.read_bvh(path)
    duration = (len(src.motion) - 1) * src.frame_time
    for fps in (15.0, 30.0, 60.0):
        clip = mocap.load_bvh(path, fps=fps)
        assert clip.fps == fps
        assert len(clip.joints) == int(np.floor(duration * fps + 1e-6)) + 1
    c30, c60 = mocap.load_bvh(path, fps=30.0).joints, mocap.load_bvh(path, fps=60.0).joints
    n = min(len(c30), (len(c60) + 1) // 2)
    assert np.allclose(c30[:n], c60[: 2 * n : 2], atol=1e-5)
    # a linear ramp sampled unevenly is reproduced exactly on the new grid
    times = np.array([0.0, 0.1, 0.25, 0.3, 0.5])
    ramp = np.broadcast_to(times[:, None, None] * 2.0, (5, 17, 3))
    out = mocap.resample(ramp, times, fps=20.0)
    assert np.allclose(out[:, 0, 0], np.arange(11) / 20.0 * 2.0)
    with pytest.raises(ValueError):
        mocap.resample(ramp, times, fps=0.0)


def test_corrupt_bvh_is_skipped_by_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = _need("animated_drawings_bvh/cmu1_jumping_jacks.bvh")
    shutil.copy(good, tmp_path / "good.bvh")
    text = good.read_text()
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "broken.bvh").write_text(text[: len(text) // 40])  # cut mid-hierarchy
    (tmp_path / "notes.md").write_text("not a motion")
    with caplog.at_level(logging.WARNING, logger="videomdm.models.motion.mocap"):
        clips = mocap.load_mocap_dir(tmp_path)
    assert [c.name for c in clips] == ["good"]
    assert [Path(p).name for p, _ in clips.failures] == ["broken.bvh"]
    assert "broken.bvh" in caplog.text


def test_bvh_fk_matches_bvhio() -> None:
    bvhio = pytest.importorskip("bvhio")
    for rel, joint in [
        ("cmu_bvh_subject131/131_01.bvh", "LeftWrist"),
        ("bandai_namco_ds1/dataset-1_bow_active_001.bvh", "Hand_R"),  # position channels
        ("cmu_iclone_bvh/002_01.bvh", "CC_Base_L_Foot"),  # extra Z-up root
        ("animated_drawings_bvh/fair1_dab.bvh", "LeftHand"),
    ]:
        path = _need(rel)
        pos, _ = bvh.forward_kinematics(bvh.read_bvh(path), [joint])
        ref = bvhio.readAsHierarchy(str(path))
        for frame in (0, len(pos) // 2):
            ref.loadPose(frame)
            expected = np.array(list(ref.filter(joint)[0].PositionWorld))
            assert np.allclose(pos[frame, 0], expected, atol=1e-3 * np.abs(expected).max())


@pytest.mark.parametrize("folder", ["cmu_iclone_bvh", "bandai_namco_ds1", "animated_drawings_bvh"])
def test_rig_head_axes_match_most_clips(folder: str) -> None:
    files = sorted(_need(folder).glob("*.bvh"))[:12]
    agree = 0
    for path in files:
        motion = bvh.read_bvh(path)
        rig = mocap.detect_rig(motion.skeleton.names)
        pos, rot = bvh.forward_kinematics(motion, [rig.head, rig.neck, *rig.body[:2]])
        frame = mocap.body_head_frame(pos[:, 0], pos[:, 1], pos[:, 2], pos[:, 3])
        agree += np.array_equal(mocap.estimate_head_axes(rot[:, 0], frame), rig.head_axes)
    assert agree >= 0.75 * len(files)


def test_face_matches_iclone_eye_joints() -> None:
    motion = bvh.read_bvh(_need("cmu_iclone_bvh/005_06.bvh"))
    rig = mocap.detect_rig(motion.skeleton.names)
    ours = mocap.bvh_to_canonical(motion, rig)[:, 1:3]  # (F, 2, 3) left, right eye
    eyes, _ = bvh.forward_kinematics(motion, ["CC_Base_L_Eye", "CC_Base_R_Eye"])
    assert np.linalg.norm(ours - eyes * rig.scale, axis=-1).max() < 0.01


def test_label_sources_are_wired() -> None:
    assert rigs.label_for(Path("x/fair1_wave_hello.bvh"), "mixamo_bvh") == "wave hello"


# --- cameras ----------------------------------------------------------------------------


def test_intrinsics_and_pixel_round_trip() -> None:
    k = cameras.Intrinsics.from_fov(1920, 1080)
    assert k.fx == pytest.approx(960.0 / np.tan(np.radians(30.0)))
    assert (k.cx, k.cy) == (960.0, 540.0)
    portrait = cameras.Intrinsics.from_fov(1080, 1920)  # a phone held upright: same lens
    assert portrait.fx == k.fx and (portrait.cx, portrait.cy) == (540.0, 960.0)
    with pytest.raises(ValueError):
        cameras.Intrinsics.from_fov(640, 480, 0.0)
    px = np.random.default_rng(1).uniform(0, 1000, size=(4, 17, 2))
    u = cameras.to_normalised(px, k)
    assert np.allclose(cameras.to_pixels(u, k), px)
    assert np.allclose(cameras.to_normalised(px, k.K), u)


def test_project_backproject_round_trip_numpy_and_torch() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform([-2, -2, 0.5], [2, 2, 8], size=(6, 17, 3))
    u, valid = cameras.project(x)
    assert valid.all()
    rays = cameras.backproject_rays(u)
    assert np.allclose(np.linalg.norm(rays, axis=-1), 1.0)
    assert np.allclose(rays * np.linalg.norm(x, axis=-1, keepdims=True), x)
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    xt_behind = torch.cat([xt, -xt[:, :1]], dim=1)  # one joint behind the camera per frame
    ut, valid_t = cameras.project(xt_behind)
    assert torch.allclose(ut[:, :17], torch.tensor(u)) and not valid_t[:, 17].any()
    (ut * valid_t[..., None]).sum().backward()
    assert torch.isfinite(xt.grad).all()
    assert torch.allclose(cameras.backproject_rays(ut[:, :17]), torch.tensor(rays))


def test_look_at_puts_target_on_optical_axis() -> None:
    eye, target = np.array([3.0, 2.0, -4.0]), np.array([0.2, 1.0, 0.5])
    r, t = cameras.look_at(eye, target)
    assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
    cam = cameras.world_to_camera(np.stack([target, target + UP])[None], r, t)[0]
    assert np.allclose(cam[0, :2], 0.0) and cam[0, 2] == pytest.approx(np.linalg.norm(eye - target))
    assert cam[1, 1] < 0.0  # world up is image up (OpenCV y points down)
    assert np.allclose(cameras.world_to_camera(eye[None, None], r, t), 0.0)


def test_sampled_cameras_see_the_subject_in_front() -> None:
    rng = np.random.default_rng(3)
    body = rng.uniform([-0.5, 0.0, -0.5], [0.5, 1.9, 0.5], size=(40, 17, 3))  # around origin
    r, t = cameras.sample_cameras(200, rng, target=(0.0, 1.0, 0.0))
    assert r.shape == (200, 3, 3) and t.shape == (200, 3)
    cam = cameras.world_to_camera(body[None], r[:, None], t[:, None])  # (200, 40, 17, 3)
    assert (cam[..., 2] > 0.5).all()
    centre = cameras.world_to_camera(np.array([[[0.0, 1.0, 0.0]]]), r, t)[:, 0]
    assert np.allclose(centre[:, :2], 0.0, atol=1e-9)
    assert ((centre[:, 2] >= 2.0) & (centre[:, 2] <= 10.0)).all()
    eye_height = -np.einsum("nji,nj->ni", r, t)[:, 1] - 1.0  # camera centre above target
    assert (eye_height > -10 * np.sin(np.radians(5)) - 1e-9).all() and (eye_height > 0).mean() > 0.7
    with pytest.raises(ValueError):
        cameras.sample_cameras(2, rng, distance_m=(5.0, 1.0))


def test_rolled_cameras_turn_about_their_optical_axis() -> None:
    """Roll keeps the camera's centre and viewing direction and tilts the image's horizon by
    up to roll_deg; without roll the draws are those of a camera that never had it."""
    r0, t0 = cameras.sample_cameras(300, np.random.default_rng(5))
    r, t = cameras.sample_cameras(300, np.random.default_rng(5), roll_deg=30.0)
    centre = lambda r, t: -np.einsum("nji,nj->ni", r, t)  # noqa: E731
    assert np.allclose(centre(r, t), centre(r0, t0)) and np.allclose(r[:, 2], r0[:, 2])
    assert np.allclose(np.einsum("nij,nkj->nik", r, r), np.eye(3), atol=1e-12)
    tilt = np.degrees(np.arcsin(r[:, 0, 1]))  # image x-axis against the world's up
    assert np.abs(tilt).max() <= 30.0 + 1e-6 and np.abs(tilt).max() > 25.0
    assert np.allclose(r0[:, 0, 1], 0.0)  # no roll: a level horizon
    again = cameras.sample_cameras(300, np.random.default_rng(5), roll_deg=0.0)
    assert np.array_equal(again[0], r0) and np.array_equal(again[1], t0)


def test_noise_model_statistics() -> None:
    rng = np.random.default_rng(4)
    clean = rng.uniform(-0.4, 0.4, size=(4000, 17, 2))
    cfg = cameras.NoiseConfig(outlier_prob=0.0, swap_prob=0.0, dropout_prob=0.0)
    noisy, score = cameras.add_2d_noise(clean, rng, cfg)
    assert noisy.shape == clean.shape and score.shape == (4000, 17)
    err_px = (noisy - clean) * cfg.focal_px
    sigma = cfg.jitter_px * cameras.COCO_SIGMAS / cameras.COCO_SIGMAS.mean()
    assert np.allclose(err_px.std(axis=(0, 2)), sigma, rtol=0.05)
    dist = np.linalg.norm(err_px, axis=-1).ravel()
    assert np.corrcoef(dist, score.ravel())[0, 1] < -0.3  # worse points score lower
    assert 0.0 <= score.min() and score.max() <= 1.0 and score.mean() > 0.7

    cfg = cameras.NoiseConfig(jitter_px=0.0, outlier_prob=0.0, swap_prob=0.0, dropout_prob=0.1)
    _, score = cameras.add_2d_noise(clean, rng, cfg)
    assert abs((score < 0.05).mean() - 0.1) < 0.01
    assert score[score >= 0.05].min() > 0.75  # undamaged points keep a high score

    cfg = cameras.NoiseConfig(jitter_px=0.0, outlier_prob=0.0, swap_prob=1.0, dropout_prob=0.0)
    noisy, score = cameras.add_2d_noise(clean, rng, cfg)
    assert np.allclose(noisy[:, J["left_wrist"]], clean[:, J["right_wrist"]])
    assert np.allclose(noisy[:, J["right_ankle"]], clean[:, J["left_ankle"]])
    assert np.allclose(noisy[:, J["nose"]], clean[:, J["nose"]])
    assert score[:, J["left_wrist"]].mean() < score[:, J["nose"]].mean()
