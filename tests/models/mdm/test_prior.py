"""The Gaussian skip (``DenoiserConfig.skip = "gaussian"``, ``mdm/prior.py``): the exact
posterior mean under a Gaussian model of the training motions, plus the scaled network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from videomdm.models.mdm.config import DenoiserConfig, DiffusionConfig, TrainConfig
from videomdm.models.mdm.denoiser import Denoiser
from videomdm.models.mdm.pipeline import VideoMDM
from videomdm.models.mdm.prior import GaussianDenoiser, fit_gaussian_prior, toeplitz_eigen
from videomdm.models.mdm.schedulers import Scheduler
from videomdm.models.mdm.trainer import Trainer

TINY = DenoiserConfig(width=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0.0, cond_drop_prob=0.0)
GAUSS = dataclasses.replace(TINY, skip="gaussian", max_frames=64)


def _smooth_processes(n: int, frames: int, channels: int, seed: int = 0) -> list[torch.Tensor]:
    """Correlated AR(1) channels (a known Gaussian process): ``n`` sequences ``(frames, C)``."""
    mix = torch.randn(channels, channels, generator=torch.Generator().manual_seed(99))
    mix = mix / channels**0.5  # the same process for every seed
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        e = torch.randn(frames, channels, generator=g)
        y = torch.zeros_like(e)
        for i in range(frames):
            y[i] = 0.95 * y[i - 1] + 0.31 * e[i] if i else e[i]
        out.append(y @ mix)
    return out


def test_the_posterior_mean_beats_the_input_and_predicts_its_own_error():
    train = _smooth_processes(40, 200, 6)
    basis, acov = fit_gaussian_prior(train, max_lag=64)
    assert basis.shape == (6, 6) and acov.shape == (6, 64)
    torch.testing.assert_close(basis.T @ basis, torch.eye(6), atol=1e-5, rtol=0)
    test = torch.stack([s[:48] for s in _smooth_processes(64, 48, 6, seed=1)])  # (B, 48, 6)
    sched, den = Scheduler(), GaussianDenoiser()
    for t in (2, 10, 40):
        abar = sched.alphas_cumprod[t].expand(len(test))
        xt = abar.sqrt()[:, None, None] * test + (1 - abar).sqrt()[
            :, None, None
        ] * torch.randn_like(test)
        z, err = den(xt, abar, basis, acov)
        mse = (z - test).square().mean()
        copy = (xt / abar.sqrt()[:, None, None] - test).square().mean()
        assert mse < 0.8 * copy  # smoothing along time and across channels removes noise
        assert mse < test.square().mean()  # and it is better than guessing the mean
        assert 0.7 < float(mse / err.square().mean()) < 1.3  # its error is the one it states


def test_toeplitz_covariance_is_positive_semidefinite_and_the_filter_passes_clean_input():
    basis, acov = fit_gaussian_prior(_smooth_processes(5, 80, 3), max_lag=64)
    v, d = toeplitz_eigen(acov, 30)
    assert v.shape == (3, 30, 30) and (d >= 0).all()
    x = torch.randn(2, 30, 3)
    z, err = GaussianDenoiser()(x, torch.ones(2), basis, acov)
    torch.testing.assert_close(z, x, atol=1e-4, rtol=1e-4)  # no noise: the input itself
    assert err.abs().max() == 0


def test_the_trainer_fits_the_prior_and_checkpoints_carry_it(clean_views, tmp_path):
    diffusion = DiffusionConfig(num_train_steps=20)
    cfg = TrainConfig(window=24, batch_size=4, steps=3, amp="none", warmup_steps=1, lr=1e-2)
    tr = Trainer(clean_views, np.zeros((4, 384), np.float32), GAUSS, cfg, diffusion)
    assert tr.raw_model.prior_acov[:, 0].sum() > 1  # fitted (unit-variance features)
    x, t = torch.randn(2, 24, TINY.n_feats), torch.tensor([1, 19])
    with torch.no_grad():  # at init the output is the Gaussian posterior mean alone
        want, _ = GaussianDenoiser()(
            x,
            Scheduler(diffusion).alphas_cumprod[t],
            tr.raw_model.prior_basis,
            tr.raw_model.prior_acov,
        )
        torch.testing.assert_close(tr.raw_model.eval()(x, t), want)
    tr.raw_model.train()
    tr.fit()
    tr.save(str(tmp_path / "ckpt.pt"))
    mdm = VideoMDM.from_checkpoint(tmp_path / "ckpt.pt")  # weights_only=True
    torch.testing.assert_close(mdm.denoiser.prior_acov, tr.raw_model.prior_acov)
    with torch.no_grad():
        torch.testing.assert_close(mdm.denoiser(x, t), tr.ema.module.eval()(x, t))
    motion = mdm.generate("a person walks", n=2, seconds=1.0, steps=5)
    assert motion.shape == (2, 30, 17, 3) and np.isfinite(motion).all()


def test_the_gaussian_skip_needs_x0_prediction_and_starts_white():
    with pytest.raises(ValueError, match="x0 prediction"):
        Denoiser(GAUSS, DiffusionConfig(prediction="v"))
    model = Denoiser(GAUSS).eval()  # no statistics yet: white unit-variance features
    x, t = torch.randn(2, 10, TINY.n_feats), torch.tensor([3, 30])
    with torch.no_grad():
        want = Scheduler().sqrt_alphas_cumprod[t][:, None, None] * x
        torch.testing.assert_close(model(x, t), want, atol=1e-5, rtol=1e-5)


def test_the_gaussian_skip_reads_only_real_frames():
    model = Denoiser(GAUSS).eval()
    model.set_prior(*fit_gaussian_prior(_smooth_processes(4, 90, TINY.n_feats), 64))
    x, t = torch.randn(3, 20, TINY.n_feats), torch.tensor([2, 10, 40])
    lengths = torch.tensor([20, 12, 7])
    mask = torch.arange(20)[None] < lengths[:, None]
    padded = torch.where(mask[..., None], x, 100.0)
    with torch.no_grad():
        out = model(padded, t, mask=mask)
        for i, n in enumerate(lengths.tolist()):
            alone = model(x[i : i + 1, :n], t[i : i + 1])
            torch.testing.assert_close(out[i : i + 1, :n], alone, atol=1e-4, rtol=1e-4)
