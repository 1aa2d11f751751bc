"""Scores against a truth with holes, and the truth's low-pass filter."""

from __future__ import annotations

import numpy as np
import pytest

from videomdm.models.evaluation.multiview import lowpass
from videomdm.models.evaluation.pose_scores import mean_scores, motion_scores, similarity


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def test_similarity_recovers_a_transform():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = 1.7 * x @ _rotation(0.4).T + np.array([1.0, -2.0, 0.5])
    s, rot, t = similarity(x, y, np.ones(50))
    assert (
        s == pytest.approx(1.7)
        and np.allclose(rot, _rotation(0.4))
        and np.allclose(t, [1, -2, 0.5])
    )


def test_scores_forgive_what_each_should_and_only_that(mocap):
    truth = mocap[0][:60].astype(np.float64)
    assert motion_scores(truth, truth).mpjpe_seq_mm == pytest.approx(0.0, abs=1e-6)
    moved = 1.25 * truth @ _rotation(0.3).T + np.array([0.2, 0.0, 3.0])
    s = motion_scores(moved, truth)
    assert s.mpjpe_seq_mm == pytest.approx(0.0, abs=1e-6) and s.scale == pytest.approx(0.8)
    assert s.pa_mpjpe_mm == pytest.approx(0.0, abs=1e-6)
    assert s.n_mpjpe_mm > 10.0  # a rotation is not forgiven by a scale
    drift = truth + np.linspace(0, 0.5, 60)[:, None, None] * np.array([1.0, 0.0, 0.0])
    s = motion_scores(drift, truth)
    assert s.pa_mpjpe_mm == pytest.approx(0.0, abs=1e-6) and s.mpjpe_mm == pytest.approx(
        0.0, abs=1e-6
    )
    assert s.mpjpe_seq_mm > 50.0  # a drifting trajectory is not one similarity


def test_unknown_truth_joints_are_left_out(mocap):
    truth = mocap[0][:60].astype(np.float64)
    rng = np.random.default_rng(1)
    pred = truth + rng.normal(scale=0.01, size=truth.shape)
    full = motion_scores(pred, truth)
    holes = truth.copy()
    holes[:, 3] = np.nan
    holes[5] = np.nan  # a whole frame unknown
    pred_bad = pred.copy()
    pred_bad[:, 3] += 5.0  # a wild joint the truth does not know
    s = motion_scores(pred_bad, holes)
    assert s.frames == 59 and s.joints == 59 * 16
    assert s.pa_mpjpe_mm == pytest.approx(full.pa_mpjpe_mm, rel=0.1) and s.pa_mpjpe_mm < 20
    both = mean_scores([full, s])
    assert both.joints == full.joints + s.joints
    assert min(full.mpjpe_mm, s.mpjpe_mm) <= both.mpjpe_mm <= max(full.mpjpe_mm, s.mpjpe_mm)


def test_lowpass_removes_jitter_keeps_motion_and_holes():
    t = np.arange(200) / 60.0
    clean = np.sin(2 * np.pi * 1.0 * t)[:, None]  # 1 Hz
    noisy = clean + np.random.default_rng(2).normal(scale=0.05, size=clean.shape)
    noisy[100] = np.nan
    out = lowpass(noisy, 60.0, 6.0)
    assert np.isnan(out[100]).all()
    ok = np.isfinite(out[:, 0])
    assert np.abs(out[ok] - clean[ok]).mean() < 0.5 * np.abs(noisy[ok] - clean[ok]).mean()
