"""Clips from tracks, the 2D-to-3D lifter, its metrics and baseline, world frame, checkpoints."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from videomdm.models.evaluation import lifter as le
from videomdm.models.evaluation import metrics as mt
from videomdm.models.lifter import network as lf
from videomdm.models.lifter import train as lt
from videomdm.models.motion import clips as clipmod
from videomdm.models.motion.cameras import Intrinsics, project, sample_cameras, to_normalised
from videomdm.models.motion.mocap import MocapClip, load_mocap_file
from videomdm.models.motion.skeleton import root

ASSETS = Path(os.environ["VIDEOMDM_ASSETS"])
MOCAP = ASSETS / "mocap"
TINY = lf.LifterConfig(
    channels=64, dilations=(1, 3, 9), batch_size=16, window=41, cameras_per_clip=4, lr=3e-3
)


def _track(n: int, rng: np.random.Generator, score: float = 0.9) -> np.ndarray:
    """A person drifting across a 640 x 480 image: ``(n, 17, 3)`` pixels + score."""
    base = rng.uniform([200, 100], [440, 380], size=(17, 2))
    xy = base[None] + np.linspace(0, 50, n)[:, None, None]
    return np.concatenate([xy, np.full((n, 17, 1), score)], axis=-1)


# --- clips ------------------------------------------------------------------------------


def test_clips_split_fill_and_drop() -> None:
    rng = np.random.default_rng(0)
    frames = np.concatenate(
        [
            np.arange(0, 40),
            np.arange(45, 100),  # 5-frame hole: filled
            np.arange(130, 200),  # 30-frame gap before: split
            np.arange(300, 310),  # too short: dropped
            np.arange(400, 460),
        ]
    )
    kp = _track(len(frames), rng)
    kp[frames >= 400, :, 2] = 0.1  # unsure: dropped
    kp[3, 5, :2] = np.nan  # one lost keypoint
    cfg = clipmod.ClipConfig(max_gap=10, min_frames=30, min_score=0.3, fps=30.0)
    out = clipmod.make_clips(frames, kp, 30.0, (640, 480), cfg)
    assert [(c.frame_start, c.frame_end) for c in out] == [(0, 100), (130, 200)]
    first = out[0]
    assert first.u.shape == (100, 17, 2) and first.conf.shape == (100, 17)
    assert first.filled_frames == 5 and first.valid_fraction == pytest.approx(0.95)
    assert (first.conf[40:45] == 0).all() and (first.conf[:40] > 0.8).sum() == 40 * 17 - 1
    assert first.conf[3, 5] == 0 and np.isfinite(first.u).all()
    K = Intrinsics.from_fov(640, 480)  # noqa: N806
    expect = to_normalised(0.5 * (kp[39, :, :2] + kp[40, :, :2]), K)  # frames 39 and 45
    assert np.allclose(first.u[42], expect, atol=1e-5)
    assert first.mean_score == pytest.approx(0.9 * (1 - 1 / (95 * 17)))  # the lost point: 0


def test_clips_resample_and_focal() -> None:
    kp = _track(121, np.random.default_rng(1))
    cfg = clipmod.ClipConfig(min_frames=10)
    (clip,) = clipmod.make_clips(np.arange(121), kp, 60.0, (640, 480), cfg, focal_px=500.0)
    assert len(clip.u) == 61 and clip.fps == 30.0
    assert np.allclose(clip.u[10], (kp[20, :, :2] - [320, 240]) / 500.0, atol=1e-5)
    with pytest.raises(ValueError):
        clipmod.make_clips(np.arange(3), kp[:2], 30.0, (640, 480))


# --- metrics and baseline -----------------------------------------------------------------


def _poses(n: int = 20) -> np.ndarray:
    return np.random.default_rng(2).normal(scale=0.3, size=(n, 17, 3))


def test_metrics_known_cases() -> None:
    gt = _poses()
    angle = 0.7
    rot = np.array(
        [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    )
    assert mt.pa_mpjpe(1.7 * gt @ rot.T + [1.0, 2.0, 3.0], gt) < 1e-6
    shifted = gt + np.array([0.006, 0.0, 0.008])  # 10 mm
    assert mt.mpjpe(shifted, gt, root_align=False) == pytest.approx(10.0)
    assert mt.mpjpe(shifted, gt) == pytest.approx(0.0, abs=1e-9)
    assert mt.accel_error(shifted, gt) == pytest.approx(0.0, abs=1e-9)
    ramp = gt.copy()
    ramp[:, 0, 0] += 0.001 * np.arange(len(gt)) ** 2  # 2 mm/frame^2 on one joint
    assert mt.accel_error(ramp, gt) == pytest.approx(2.0 / 17)  # the nose moves no root
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # a reflection is no rotation
    assert mt.pa_mpjpe(mirrored, gt) > 10.0
    assert mt.n_mpjpe(1.3 * gt + [0.0, 1.0, 5.0], gt) < 1e-6  # scale and translation only
    assert mt.n_mpjpe(gt @ rot.T, gt) <= mt.mpjpe(gt @ rot.T, gt) + 1e-9  # scale fitted
    assert mt.n_mpjpe(gt @ rot.T, gt) > 10.0  # a rotation still counts


def test_baseline_recovers_a_flat_pose_at_known_depth() -> None:
    gt = _poses(5)
    gt[..., 2] = 4.0  # every joint at 4 m: a flat profile is exact
    u, _ = project(gt)
    assert mt.mpjpe(le.fixed_depth_backproject(u, depth=4.0), gt, root_align=False) < 1e-6
    est = le.fixed_depth_backproject(u)  # depth from bone lengths: finite and sensible
    assert np.isfinite(est).all() and 0.5 < np.median(est[..., 2]) < 50


# --- lifter -------------------------------------------------------------------------------


def test_nan_inputs_never_reach_the_output() -> None:
    model = lf.Lifter(TINY).eval()
    rng = np.random.default_rng(3)
    u = rng.normal(scale=0.1, size=(50, 17, 2))
    conf = rng.uniform(size=(50, 17))
    u[5, 3] = np.nan
    u[10:14] = np.nan  # whole frames lost
    conf[20, :] = 0.0
    conf[30, 2] = np.nan
    out = lf.lift(model, u, conf)
    assert out.shape == (50, 17, 3) and np.isfinite(out).all()
    assert np.isfinite(lf.lift(model, np.full((7, 17, 2), np.nan), np.zeros((7, 17)))).all()
    assert lf.lift(model, np.zeros((0, 17, 2)), np.zeros((0, 17))).shape == (0, 17, 3)
    many = lf.lift_many(model, [u, u[:20]], [conf, conf[:20]])
    assert [m.shape[0] for m in many] == [50, 20] and all(np.isfinite(m).all() for m in many)


def test_split_by_clip_is_disjoint_and_covers_sources() -> None:
    zeros = np.zeros((5, 17, 3), np.float32)
    clips = [MocapClip(f"c{i}", f"src{i % 3}", zeros, 30.0) for i in range(20)]
    clips.append(MocapClip("solo", "single", zeros, 30.0))
    train, val = lt.split_by_clip(clips, 0.2)
    names_t, names_v = {c.name for c in train}, {c.name for c in val}
    assert not names_t & names_v and len(names_t | names_v) == len(clips)
    assert {c.source for c in val} == {"src0", "src1", "src2", "single"}


def _need_mocap(*rel: str) -> list[MocapClip]:
    paths = [MOCAP / r for r in rel]
    missing = [p for p in paths if not p.exists()]
    if missing:
        pytest.skip(
            f"{missing[0]} is absent: these tests need the shared mocap assets "
            "(set VIDEOMDM_ASSETS)"
        )
    return [c for c in (load_mocap_file(p) for p in paths) if c is not None]


BANDAI = "bandai_namco_ds1/dataset-1_{}_001.bvh"


@pytest.fixture(scope="module")
def small_mocap() -> tuple[list[MocapClip], list[MocapClip]]:
    moves = (
        "walk_normal",
        "run_normal",
        "dance-short_normal",
        "kick_normal",
        "punch_normal",
        "bow_active",
        "guide_normal",
        "walk-left_happy",
        "dash_old",
        "bye_proud",
    )
    train = _need_mocap(
        *[BANDAI.format(m) for m in moves], "cmu_iclone_bvh/002_01.bvh", "cmu_iclone_bvh/005_01.bvh"
    )
    val = _need_mocap(
        BANDAI.format("walk_active"),
        BANDAI.format("run_sad"),
        BANDAI.format("walk-back_angry"),
        "cmu_iclone_bvh/002_02.bvh",
    )
    return train, val


@pytest.mark.slow
def test_tiny_lifter_beats_the_baseline_and_round_trips(small_mocap, tmp_path) -> None:
    train, val = small_mocap
    torch.manual_seed(0)
    model, hist = lt.train_lifter(train, val, TINY, steps=300, num_threads=1)
    assert hist["step"][-1] == 300 and np.isfinite(hist["val_mpjpe_mm"]).all()
    res = le.evaluate_lifter(model, val, np.random.default_rng(7), cameras_per_clip=2)
    assert res["mpjpe_mm"] < res["baseline_mpjpe_mm"], res
    assert res["noisy_mpjpe_mm"] < res["baseline_noisy_mpjpe_mm"], res
    assert res["pa_mpjpe_mm"] < res["baseline_pa_mpjpe_mm"], res
    path = tmp_path / "lifter.pt"
    lf.save_checkpoint(path, model, TINY, {"metrics": res})
    loaded, cfg, extra = lf.load_checkpoint(path)  # weights_only=True inside
    assert cfg == TINY and extra["metrics"]["mpjpe_mm"] == res["mpjpe_mm"]
    u, _ = project(val[0].joints[:60] @ np.eye(3) + [0.0, 0.0, 5.0])
    conf = np.ones(u.shape[:2])
    assert np.allclose(lf.lift(loaded, u, conf), lf.lift(model, u, conf), atol=1e-5)
    assert dataclasses.asdict(lf.LifterConfig.from_dict(TINY.to_dict())) == dataclasses.asdict(TINY)


def test_camera_to_world_recovers_up_and_floor(small_mocap) -> None:
    walk = small_mocap[0][0].joints.astype(np.float64)  # Y up, floor at 0
    rng = np.random.default_rng(5)
    R, t = sample_cameras(3, rng, target=root(walk).mean(0))  # noqa: N806
    for k in range(3):
        cam = walk @ R[k].T + t[k]
        world, R_est, t_est = lf.camera_to_world(cam)  # noqa: N806
        assert np.allclose(world @ R_est.T + t_est, cam, atol=1e-6)
        up_est = R_est[:, 1]
        angle = np.degrees(np.arccos(np.clip(up_est @ R[k][:, 1], -1, 1)))
        assert angle < 8.0, angle
        assert abs(np.percentile(world[:, 15:17, 1].min(1), 10) - 0.08) < 0.02
        assert np.allclose(root(world[0])[[0, 2]], 0.0, atol=1e-9)
        assert 0.6 < root(world)[:, 1].mean() < 1.1


def test_confidence_can_be_left_out_of_the_input():
    cfg = dataclasses.replace(lf.LifterConfig(), use_confidence=False)
    conf = np.array([[0.0, 0.2, 0.9, np.nan]], np.float32)
    assert lf.input_conf(cfg, conf).tolist() == [[0.0, 1.0, 1.0, 0.0]]
    assert lf.input_conf(lf.LifterConfig(), conf) is conf
