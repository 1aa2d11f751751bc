"""The detector-noise statistics, the noise model's new options, and the fit closing the loop:
noise drawn from a fitted model measures like what it was fitted to."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from videomdm.models.evaluation.noise import (
    correlation_time,
    fit_noise,
    noise_stats,
    synthetic_errors,
)
from videomdm.models.motion.cameras import NoiseConfig, add_2d_noise
from videomdm.models.motion.skeleton import FLIP_PERM


def test_noise_stats_recover_known_jitter_outliers_and_misses():
    rng = np.random.default_rng(0)
    sigma = np.linspace(0.05, 0.2, 17)
    err = rng.normal(size=(4000, 17, 2)) * sigma[None, :, None]
    wild = rng.random((4000, 17)) < 0.02
    err[wild] = 3.0 * np.sign(rng.normal(size=(int(wild.sum()), 2)))
    score = np.where(rng.random((4000, 17)) < 0.1, 0.1, 0.95)
    s = noise_stats(err, score)
    np.testing.assert_allclose(s.sigma, sigma, rtol=0.1)
    assert s.outlier_rate == pytest.approx(0.02, abs=0.005)
    assert s.missed_rate == pytest.approx(0.1, abs=0.01)
    assert abs(s.score_slope) < 0.05  # these scores say nothing about the error


def test_body_scaled_noise_grows_with_the_person(mocap):
    u = mocap[0][:50, :, :2] * 0.2  # a pose and the same pose twice as big in the image
    cfg = NoiseConfig(body_px=100.0, jitter_px=10.0, outlier_prob=0.0, dropout_prob=0.0)
    cfg = dataclasses.replace(cfg, swap_prob=0.0)
    small, _ = add_2d_noise(u, np.random.default_rng(1), cfg)
    big, _ = add_2d_noise(2 * u, np.random.default_rng(1), cfg)
    np.testing.assert_allclose(big - 2 * u, 2 * (small - u), atol=1e-9)
    fixed, _ = add_2d_noise(2 * u, np.random.default_rng(1), NoiseConfig(swap_prob=0.0))
    assert np.abs(fixed - 2 * u).mean() < np.abs(big - 2 * u).mean()  # 4 px at f=1000: less


def test_whole_body_swap_episodes():
    u = np.random.default_rng(2).normal(size=(3000, 17, 2))
    cfg = NoiseConfig(jitter_px=0.0, outlier_prob=0.0, dropout_prob=0.0, swap_prob=0.0)
    noisy, _ = add_2d_noise(
        u, np.random.default_rng(3), dataclasses.replace(cfg, body_swap_prob=0.1)
    )
    mirrored = np.isclose(noisy, u[:, list(FLIP_PERM)]).all((1, 2))
    assert 0.06 < mirrored.mean() < 0.14
    starts = np.flatnonzero(np.diff(mirrored.astype(int)) == 1)
    assert mirrored.sum() / max(len(starts), 1) > 4  # episodes, not single frames


def test_a_fitted_model_measures_like_its_measurement(mocap):
    rng = np.random.default_rng(4)
    real = noise_stats(*synthetic_errors(mocap, NoiseConfig(body_px=80.0, jitter_px=9.0), rng))
    fitted = fit_noise(real, body_swap_share=0.0)
    again = noise_stats(*synthetic_errors(mocap, fitted, rng))
    assert again.mean_sigma == pytest.approx(real.mean_sigma, rel=0.15)
    np.testing.assert_allclose(again.sigma, real.sigma, rtol=0.25)
    assert again.missed_rate == pytest.approx(real.missed_rate, abs=0.02)


def test_correlated_jitter_and_its_measured_correlation_time():
    u = np.random.default_rng(5).normal(size=(1, 17, 2)).repeat(400, 0) * 0.1
    cfg = NoiseConfig(jitter_corr_frames=5.0, outlier_prob=0.0, dropout_prob=0.0, swap_prob=0.0)
    rng = np.random.default_rng(6)
    runs = [add_2d_noise(u, rng, cfg)[0] - u for _ in range(10)]
    assert correlation_time(runs, 30.0, lag=1) == pytest.approx(5.0 / 30.0, rel=0.25)
    independent = [add_2d_noise(u, rng, NoiseConfig())[0] - u for _ in range(10)]
    assert correlation_time(independent, 30.0, lag=1) < 0.02
