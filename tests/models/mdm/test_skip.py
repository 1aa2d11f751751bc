"""The learned skip (``DenoiserConfig.skip``): x0_hat = a(t) * S(x_t) + F(x_t, t, c)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from videomdm.errors import UserError
from videomdm.models.mdm.config import DenoiserConfig, DiffusionConfig, TrainConfig
from videomdm.models.mdm.denoiser import Denoiser, gaussian_kernel, smooth_time
from videomdm.models.mdm.pipeline import VideoMDM
from videomdm.models.mdm.schedulers import Scheduler
from videomdm.models.mdm.trainer import Trainer

TINY = DenoiserConfig(width=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0.0, cond_drop_prob=0.0)
SKIP = dataclasses.replace(TINY, skip="learned", skip_smoothing=2.0)


def _pair(cfg: DenoiserConfig, diffusion: DiffusionConfig = DiffusionConfig()):
    torch.manual_seed(0)
    plain = Denoiser(dataclasses.replace(cfg, skip="none", skip_smoothing=0.0)).eval()
    torch.manual_seed(0)
    return plain, Denoiser(cfg, diffusion).eval()


@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_skip_changes_the_output_at_init_only_by_the_skip(sigma):
    plain, skip = _pair(dataclasses.replace(SKIP, skip_smoothing=sigma))
    x, t = torch.randn(3, 30, TINY.n_feats), torch.tensor([0, 2, 40])
    cond = torch.randn(3, 384)
    gain = Scheduler().sqrt_alphas_cumprod[t][:, None, None]
    s = (
        x
        if sigma == 0
        else torch.from_numpy(
            gaussian_filter1d(x.numpy(), sigma, axis=1, mode="nearest", truncate=3.0)
        )
    )
    with torch.no_grad():
        assert skip(x, t, cond).abs().max() > 0.1
        # F starts at zero: the output is the skip alone
        torch.testing.assert_close(skip(x, t, cond), gain * s, atol=1e-5, rtol=1e-5)
        # and the transformer is the plain one: with its output projection, the difference
        # is exactly the skip
        skip.output_proj.load_state_dict(plain.output_proj.state_dict())
        torch.testing.assert_close(
            skip(x, t, cond) - plain(x, t, cond), gain * s, atol=1e-5, rtol=1e-5
        )
    assert plain.output_proj.weight.abs().max() > 0  # the default keeps its initialisation
    assert "skip" not in plain.state_dict()  # so checkpoints without the option load as before


def test_smoothing_is_a_gaussian_over_time_only():
    x = torch.randn(2, 25, 5, dtype=torch.float64)
    k = gaussian_kernel(2.0)
    assert len(k) == 13 and abs(float(k.sum()) - 1) < 1e-6
    want = gaussian_filter1d(x.numpy(), 2.0, axis=1, mode="nearest", truncate=3.0)
    np.testing.assert_allclose(smooth_time(x, k).numpy(), want, atol=1e-6)
    ramp = torch.arange(10.0)[None, :, None].expand(1, 10, 3)
    np.testing.assert_allclose(smooth_time(ramp, k)[0, 4:6], ramp[0, 4:6], atol=0.2)


def test_skip_needs_x0_prediction_and_a_known_mode():
    with pytest.raises(ValueError, match="x0 prediction"):
        Denoiser(SKIP, DiffusionConfig(prediction="v"))
    with pytest.raises(UserError, match="skip"):
        DenoiserConfig(skip="fixed")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="skip_smoothing"):
        DenoiserConfig(skip_smoothing=-1.0)


def test_skip_checkpoint_trains_the_gain_and_loads_the_same_network(clean_views, tmp_path):
    samples = clean_views
    diffusion = DiffusionConfig(num_train_steps=20)  # a schedule other than the default
    cfg = TrainConfig(window=24, batch_size=4, steps=3, amp="none", warmup_steps=1, lr=1e-2)
    tr = Trainer(samples, np.zeros((4, 384), np.float32), SKIP, cfg, diffusion)
    a0 = tr.raw_model.skip.detach().clone()
    assert a0.shape == (20, TINY.n_feats)
    tr.fit()
    assert not torch.equal(tr.raw_model.skip, a0)  # the gain is learned
    tr.save(str(tmp_path / "ckpt.pt"))
    mdm = VideoMDM.from_checkpoint(tmp_path / "ckpt.pt")  # weights_only=True
    assert mdm.denoiser.cfg == SKIP and mdm.denoiser.skip is not None
    x, t = torch.randn(2, 24, TINY.n_feats), torch.tensor([1, 19])
    with torch.no_grad():
        torch.testing.assert_close(mdm.denoiser(x, t), tr.ema.module.eval()(x, t))
    motion = mdm.generate("a person walks", n=2, seconds=1.0, steps=5)
    assert motion.shape == (2, 30, 17, 3) and np.isfinite(motion).all()


def test_skip_max_t_limits_the_skip_to_small_steps():
    _, skip = _pair(dataclasses.replace(SKIP, skip_max_t=10))
    x, cond = torch.randn(4, 30, TINY.n_feats), torch.randn(4, 384)
    t = torch.tensor([0, 9, 10, 40])
    term = skip.skip_term(x, t)
    assert (term[:2].abs().amax(dim=(1, 2)) > 0.1).all()  # below step 10: the skip
    assert term[2:].abs().max() == 0  # from step 10 on: none
    # training cannot switch it back on above step 10
    skip.train()
    torch.optim.SGD(skip.parameters(), lr=1.0).zero_grad()
    skip(x, t, cond).square().mean().backward()
    with torch.no_grad():
        skip.skip.add_(-1.0 * skip.skip.grad - 0.5)
    assert skip.skip_term(x, t)[2:].abs().max() == 0
    with pytest.raises(UserError, match="skip_max_t"):
        DenoiserConfig(skip_max_t=-1)
