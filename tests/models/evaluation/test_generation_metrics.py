"""Generation metrics: FID, diversity, foot skating, bone-length variation, motion encoder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from videomdm.models.evaluation import generation as me
from videomdm.models.evaluation import plausibility as pl
from videomdm.models.motion.mocap import load_mocap_dir
from videomdm.models.motion.skeleton import JOINT_INDEX

ASSETS = Path(os.environ["VIDEOMDM_ASSETS"])
# Small enough to train in well under a minute on 2 busy CPU cores.
SMALL = me.MotionEncoderConfig(hidden=64, steps=200, batch=32, n_windows=512, seed=0)

# A standing pose (x left, y up, z forward), ankles 8 cm above the floor.
STAND = np.array(
    [
        [0.0, 1.60, 0.10],
        [0.03, 1.64, 0.08],
        [-0.03, 1.64, 0.08],
        [0.07, 1.61, 0.0],
        [-0.07, 1.61, 0.0],
        [0.18, 1.40, 0.0],
        [-0.18, 1.40, 0.0],
        [0.20, 1.12, 0.0],
        [-0.20, 1.12, 0.0],
        [0.21, 0.88, 0.05],
        [-0.21, 0.88, 0.05],
        [0.10, 0.95, 0.0],
        [-0.10, 0.95, 0.0],
        [0.10, 0.52, 0.02],
        [-0.10, 0.52, 0.02],
        [0.10, 0.08, 0.0],
        [-0.10, 0.08, 0.0],
    ]
)
L_ANKLE, R_ANKLE, L_KNEE = JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"], 13


def _yaw(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


# --- distribution metrics -----------------------------------------------------------------


def test_frechet_distance_zero_shift_and_symmetry():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    assert me.frechet_distance(x, x) < 1e-6
    # same covariance: FID is the squared mean shift, 8 * 0.5^2
    assert me.frechet_distance(x, x + 0.5) == pytest.approx(2.0, abs=1e-5)
    assert me.frechet_distance(x, x + 1.0) > me.frechet_distance(x, x + 0.5)
    y = 1.5 * rng.normal(size=(300, 8)) + 0.2
    d_xy, d_yx = me.frechet_distance(x, y), me.frechet_distance(y, x)
    assert d_xy > 1.0
    assert d_xy == pytest.approx(d_yx, rel=1e-6)
    # fewer samples than dimensions: rank-deficient covariances still give a finite value
    assert np.isfinite(me.frechet_distance(x[:5], y[:5]))
    with pytest.raises(ValueError, match="embeddings"):
        me.frechet_distance(x, y[:, :4])


def test_diversity():
    same = np.tile(np.arange(16.0), (50, 1))
    assert me.diversity(same) == 0.0
    spread = np.random.default_rng(0).normal(size=(1000, 16))
    div = me.diversity(spread, n_pairs=2000)
    assert 0.9 * np.sqrt(32) < div < 1.05 * np.sqrt(32)  # E|x - y| for x, y ~ N(0, I_16)
    assert me.diversity(spread, seed=1) == me.diversity(spread, seed=1)
    with pytest.raises(ValueError):
        me.diversity(spread[:1])


# --- physical plausibility ----------------------------------------------------------------


def test_foot_skating_planted_vs_sliding():
    t = np.arange(90) / 30.0
    static = np.repeat(STAND[None], len(t), 0)
    assert pl.foot_skating(static) == 0.0
    # walking in place: each foot in turn lifted 10 cm, straight up, the other planted
    march = static.copy()
    lift = 0.10 * np.clip(np.sin(2 * np.pi * t), 0, None)
    march[:, [L_ANKLE, L_KNEE], 1] += lift[:, None]
    march[:, R_ANKLE, 1] += 0.10 * np.clip(-np.sin(2 * np.pi * t), 0, None)
    assert pl.foot_skating(march) < 1e-9
    # a swinging foot 10 cm up moves fast but is not on the floor: not skating
    swing = static.copy()
    swing[:, L_ANKLE, 1] += 0.10
    swing[:, L_ANKLE, 2] += 0.5 * np.sin(2 * np.pi * t)
    assert pl.foot_skating(swing) < 1e-9
    # the whole body sliding at 1 m/s along X: both planted feet skate at 1 m/s,
    # wherever the floor is (unaligned motion 0.7 m below Y = 0)
    slide = static + np.stack([t, np.full_like(t, -0.7), np.zeros_like(t)], -1)[:, None]
    assert pl.foot_skating(slide) == pytest.approx(1.0, abs=1e-9)
    assert pl.foot_skating(slide, fps=60.0) == pytest.approx(2.0, abs=1e-9)  # m/s, not m/frame
    with pytest.raises(ValueError):
        pl.foot_skating(static[:1])


def test_bone_length_variation_rigid_vs_jitter():
    rng = np.random.default_rng(0)
    moved = np.stack(
        [STAND @ _yaw(a).T + rng.normal(size=3) for a in rng.uniform(-np.pi, np.pi, 60)]
    )
    assert pl.bone_length_variation(moved) < 1e-6
    jittered = moved + rng.normal(0.0, 0.01, moved.shape)
    assert pl.bone_length_variation(jittered) > 0.01
    stats = pl.motion_stats([moved, jittered])
    assert set(stats) == {"foot_skating_mps", "bone_length_cv", "n_motions"}
    assert stats["n_motions"] == 2.0 and stats["bone_length_cv"] > 0.005


# --- the motion encoder on real mocap -----------------------------------------------------


@pytest.fixture(scope="module")
def split() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """All shared mocap, 3/4 of the clips to train on and 1/4 held out."""
    if not (ASSETS / "mocap").is_dir():
        pytest.skip("shared mocap assets are absent (set VIDEOMDM_ASSETS)")
    clips = load_mocap_dir(ASSETS / "mocap", fps=30.0)
    held = set(np.random.default_rng(0).permutation(len(clips))[: len(clips) // 4].tolist())
    train = [c.joints for i, c in enumerate(clips) if i not in held]
    test = [c.joints for i, c in enumerate(clips) if i in held]
    assert len(train) >= 50 and len(test) >= 20
    return train, test


@contextmanager
def one_thread() -> Iterator[None]:
    """These small models gain nothing from two threads, and on a busy 2-core machine two
    threads that wait for each other trained 9x slower (72 s against 8 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def encoder(split) -> me.MotionEncoder:
    with one_thread():
        return me.train_motion_encoder(split[0], SMALL)


@pytest.fixture(scope="module")
def held_out_windows(split) -> list[np.ndarray]:
    wins = [w for j in split[1] if len(j) >= SMALL.window for w in me.cut_windows(j, SMALL.window)]
    np.random.default_rng(1).shuffle(wins)
    assert len(wins) >= 100
    return wins


def test_encoder_fid_separates_real_from_corrupted(encoder, held_out_windows):
    a, b = held_out_windows[::2], held_out_windows[1::2]
    emb_a = me.embed(encoder, a)
    assert emb_a.shape == (len(a), SMALL.dim)
    real = me.frechet_distance(emb_a, me.embed(encoder, b))
    noise = np.random.default_rng(2)
    corrupted = {
        "jitter 3 cm": [w + noise.normal(0.0, 0.03, w.shape) for w in b],
        "time-reversed": [w[::-1] for w in b],
        "frozen": [np.repeat(w[:1], len(w), 0) for w in b],
    }
    fids = {k: me.frechet_distance(emb_a, me.embed(encoder, v)) for k, v in corrupted.items()}
    for name, fid in fids.items():
        assert fid > 2.0 * real, (name, fid, real)
    assert me.diversity(emb_a) > 1.0


def test_encoder_invariant_to_yaw_translation_and_floor(encoder, held_out_windows):
    wins = held_out_windows[:40]
    emb = me.embed(encoder, wins)
    moved = [w @ _yaw(2.0).T + np.array([3.0, 0.4, -2.0]) for w in wins]
    np.testing.assert_allclose(me.embed(encoder, moved), emb, atol=1e-3 * np.abs(emb).max())
    with torch.no_grad():  # forward on a joints batch is the same embedding
        fwd = encoder(np.stack(moved)).double().numpy()
    np.testing.assert_allclose(fwd, emb, atol=1e-3 * np.abs(emb).max())


def test_embed_modes_and_state_round_trip(encoder, held_out_windows, tmp_path):
    long = np.concatenate(held_out_windows[:3])  # 3 windows, 180 frames
    per_window = me.embed(encoder, held_out_windows[:3])
    np.testing.assert_allclose(
        me.embed(encoder, [long], mode="mean")[0], per_window.mean(0), atol=1e-4
    )
    np.testing.assert_allclose(me.embed(encoder, [long])[0], per_window[1], atol=1e-4)
    assert me.embed(encoder, [held_out_windows[0][:20]]).shape == (1, SMALL.dim)  # padded
    with pytest.raises(ValueError, match="center"):
        me.embed(encoder, [long], mode="all")

    torch.save(me.encoder_state(encoder), tmp_path / "enc.pt")
    loaded = me.load_encoder(torch.load(tmp_path / "enc.pt", weights_only=True))
    assert loaded.cfg == SMALL
    np.testing.assert_array_equal(me.embed(loaded, [long]), me.embed(encoder, [long]))


def test_training_is_deterministic(split):
    tiny = me.MotionEncoderConfig(hidden=16, dim=8, steps=5, batch=8, n_windows=32, seed=3)
    with one_thread():
        a = me.train_motion_encoder(split[0][:20], tiny).state_dict()
        b = me.train_motion_encoder(split[0][:20], tiny).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="window"):
        me.train_motion_encoder([np.zeros((10, 17, 3))], tiny)


def test_sample_stats_tell_moving_from_standing_and_seeds_apart(mocap):
    clips = [j[:60] for j in mocap[:3]]
    real = pl.sample_stats(clips)
    assert real["joint_speed_mps"] > 0.1 and real["bone_length_cv"] < 0.01
    assert real["spread_m"] > 0.05  # three different motions
    standing = [np.repeat(j[:1], 60, axis=0) for j in clips[:1]] * 3  # one pose, "three seeds"
    still = pl.sample_stats(standing)
    assert still["joint_speed_mps"] == 0.0 and still["spread_m"] == 0.0
    assert "samples differ by 0.0 cm" in pl.describe_samples(still)
    shifted = [j + np.array([1.0, 0.0, 2.0]) for j in clips]  # moving the root changes nothing
    assert pl.sample_stats(shifted)["spread_m"] == pytest.approx(real["spread_m"])
