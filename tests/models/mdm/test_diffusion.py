"""Motion features, diffusion schedulers, the denoiser and the 2D losses (incl. the theory test)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from videomdm.config import preset
from videomdm.models.mdm import losses, schedulers, text_encoder
from videomdm.models.mdm.config import DenoiserConfig, DiffusionConfig
from videomdm.models.mdm.denoiser import Denoiser, FastDropout
from videomdm.models.mdm.prior import fit_gaussian_prior
from videomdm.models.motion import features
from videomdm.models.motion.cameras import project, sample_cameras, world_to_camera
from videomdm.models.motion.layout import FEATURE_DIM
from videomdm.models.motion.skeleton import root

SMALL = preset("small")[0]


# --- schedulers ---------------------------------------------------------------------------


def test_schedule_and_add_noise():
    sched = schedulers.DDPMScheduler()
    assert len(sched.timesteps) == 50 and sched.config.schedule == "cosine"
    assert torch.all(sched.alphas_cumprod.diff() < 0) and sched.alphas_cumprod[-1] < 1e-3
    gen = torch.Generator().manual_seed(0)  # not the global stream: it differs by test order
    x0, noise = torch.randn(4, 30, 8, generator=gen), torch.randn(4, 30, 8, generator=gen)
    x_first = sched.add_noise(x0, noise, torch.zeros(4, dtype=torch.long))
    assert (x_first - x0).std() < 0.05  # t = 0 is nearly clean
    x_last = sched.add_noise(x0, noise, torch.full((4,), 49))
    assert torch.corrcoef(torch.stack([x_last.flatten(), noise.flatten()]))[0, 1] > 0.999
    t = torch.randint(0, 50, (4,))
    x_t = sched.add_noise(x0, noise, t)
    eps = sched.convert(x0, x_t, t, "x0", "epsilon")
    assert torch.allclose(eps, noise, atol=1e-3)
    assert torch.allclose(sched.convert(eps, x_t, t, "epsilon", "x0"), x0, atol=1e-4)
    # v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022), and back to both
    abar = sched.alphas_cumprod[t][:, None, None]
    v_true = abar.sqrt() * noise - (1 - abar).sqrt() * x0
    v = sched.convert(x0, x_t, t, "x0", "v")
    assert torch.allclose(v, v_true, atol=1e-3)
    assert torch.allclose(sched.convert(v, x_t, t, "v", "x0"), x0, atol=1e-4)
    assert torch.allclose(sched.convert(v, x_t, t, "v", "epsilon"), noise, atol=1e-3)
    assert torch.allclose(sched.convert(eps, x_t, t, "epsilon", "v"), v_true, atol=1e-3)
    with pytest.raises(ValueError, match="cosine"):
        DiffusionConfig(schedule="quadratic")


@pytest.mark.parametrize("kind,steps", [("ddim", 50), ("ddim", 10), ("ddpm", None)])
def test_oracle_model_recovers_x0(kind, steps):
    sched = schedulers.make_scheduler(kind, num_inference_steps=steps)
    x0 = torch.randn(3, 20, FEATURE_DIM)
    out = schedulers.sample(
        lambda x, t, c, d: x0, x0.shape, sched, generator=torch.Generator().manual_seed(0)
    )
    assert torch.allclose(out, x0, atol=1e-5)


def test_ddim_reads_next_step_from_array():
    sched = schedulers.DDIMScheduler(num_inference_steps=10)
    assert sched.timesteps.tolist() == [49, 44, 39, 34, 29, 24, 19, 14, 9, 4]
    assert sched.prev_timestep(9) == 4 and sched.prev_timestep(4) == -1
    x0, x_t = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    a = sched.step(x0, 24, x_t).prev_sample
    sched.step(x0, 49, x_t)  # an unrelated call leaves no state behind
    assert torch.equal(a, sched.step(x0, 24, x_t).prev_sample)
    with pytest.raises(ValueError):
        sched.step(x0, 25, x_t)
    with pytest.raises(ValueError, match="ddim"):
        schedulers.make_scheduler("euler")


def test_posterior_sampling_step_descends_the_loss():
    """Through an identity denoiser (x0_hat = x_t) one DPS step straight to x0 is a normalised
    gradient step on x_t: the loss must fall, and more for a larger step."""
    sched = schedulers.DDIMScheduler(DiffusionConfig(), 1)  # one step: t = 49 -> x0
    target = torch.randn(3, 10, 4)

    def loss_fn(z):
        return ((z - target) ** 2).mean(dim=(1, 2))

    x_t = torch.randn(3, 10, 4)
    before = loss_fn(x_t)
    after = [
        loss_fn(
            schedulers.sample(
                lambda x, t, c, d: x,
                x_t.shape,
                sched,
                x_T=x_t,
                posterior_loss=loss_fn,
                posterior_scale=k,
            )
        )
        for k in (0.1, 0.5)
    ]
    assert torch.all(after[0] < before) and torch.all(after[1] < after[0])


def test_posterior_sampling_move_is_capped_by_the_noise_level():
    """Through an identity denoiser one DDIM step to x0 returns x_t minus the DPS move: with a
    huge scale the move is huge, with the cap its RMS is at most cap * sqrt(1 - abar_t)."""
    sched = schedulers.DDIMScheduler(DiffusionConfig(), 1)  # t = 49 -> x0
    target, x_t = torch.randn(3, 10, 4), torch.randn(3, 10, 4)

    def move(cap: float) -> torch.Tensor:
        out = schedulers.sample(
            lambda x, t, c, d: x,
            x_t.shape,
            sched,
            x_T=x_t,
            posterior_loss=lambda z: ((z - target) ** 2).mean(dim=(1, 2)),
            posterior_scale=1e4,
            posterior_max=cap,
        )
        return (out - x_t).square().mean(dim=(1, 2)).sqrt()  # (B,) RMS of the move

    noise = float(sched.sqrt_one_minus_alphas_cumprod[int(sched.timesteps[0])])
    assert (move(0.0) > 100).all()
    capped = move(0.3)
    assert (capped <= 0.3 * noise + 1e-5).all() and (capped > 0.29 * noise).all()


def test_dps_scale_defaults_to_the_models():
    from videomdm.models.mdm.config import GuidanceConfig
    from videomdm.models.mdm.sampling import dps_scale

    assert dps_scale(GuidanceConfig(), SMALL) == 3.0  # the Gaussian skip reads x_t
    assert dps_scale(GuidanceConfig(), dataclasses.replace(SMALL, skip="none")) == 10.0
    assert dps_scale(GuidanceConfig(dps_scale=0.5), SMALL) == 0.5


def test_classifier_free_guidance_and_hook():
    assert torch.equal(
        schedulers.cfg_combine(torch.ones(2), torch.zeros(2), 2.5), torch.full((2,), 2.5)
    )

    def model_fn(x, t, cond, drop):  # conditional output 1, unconditional 0
        on = torch.ones(x.shape[0]) if drop is None else (~drop).float()
        return on[:, None, None].expand_as(x) * (cond[:, :1, None] if cond is not None else 0)

    sched = schedulers.DDIMScheduler(num_inference_steps=1)  # one step: the result is x0_hat
    cond = torch.ones(2, 384)
    out = schedulers.sample(model_fn, (2, 4, 3), sched, guidance_scale=2.5, cond=cond)
    assert torch.allclose(out, torch.full_like(out, 2.5))
    seen: list[int] = []

    def hook(x0_hat, t):
        seen.append(t)
        return torch.zeros_like(x0_hat)

    sched = schedulers.DDIMScheduler(num_inference_steps=5)
    out = schedulers.sample(model_fn, (2, 4, 3), sched, 3.0, cond, guidance_fn=hook)
    assert seen == sched.timesteps.tolist() and torch.allclose(
        out, torch.zeros_like(out), atol=1e-6
    )


# --- denoiser -----------------------------------------------------------------------------


def _with_prior(model: Denoiser) -> Denoiser:
    """The preset's Gaussian skip with statistics of smooth random sequences."""
    seqs = [torch.randn(90, FEATURE_DIM).cumsum(0) / 5 for _ in range(3)]
    model.set_prior(*fit_gaussian_prior(seqs, 64))
    return model


def test_denoiser_shapes_and_padding_invariance():
    torch.manual_seed(0)
    model = _with_prior(Denoiser(SMALL)).eval()
    assert SMALL.skip == "gaussian"  # the presets' denoiser
    x, t, cond = torch.randn(2, 20, FEATURE_DIM), torch.tensor([3, 40]), torch.randn(2, 384)
    with torch.no_grad():
        ref = model(x, t, cond)
        padded = torch.cat([x, 100 * torch.randn(2, 9, FEATURE_DIM)], dim=1)
        mask = torch.arange(29)[None].expand(2, -1) < 20
        out = model(padded, t, cond, mask=mask)
        assert ref.shape == (2, 20, FEATURE_DIM)
        assert torch.allclose(out[:, :20], ref, atol=1e-5)
        dropped = model(x, t, cond, drop_cond=torch.tensor([True, True]))
        assert torch.allclose(dropped, model(x, t, None), atol=1e-6)
    labels = _with_prior(Denoiser(dataclasses.replace(SMALL, cond_mode="label", num_labels=7)))
    assert labels(x, t, torch.tensor([1, 6])).shape == x.shape
    with pytest.raises(ValueError, match="text"):
        DenoiserConfig(cond_mode="audio")
    paper, cfg = preset("paper")
    assert (paper.n_layers, paper.width, paper.n_heads, paper.ff_dim) == (8, 512, 4, 1024)
    assert (cfg.window, cfg.batch_size) == (120, 64)
    with pytest.raises(ValueError, match="small"):
        preset("huge")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_dropout_matches_nn_dropout_statistics(dtype):
    drop = FastDropout(0.1).train()
    x = torch.ones(1000, 1001, dtype=dtype, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.1) < 2e-3  # drop rate p
    assert torch.allclose(y[kept].float(), torch.tensor(1 / 0.9), rtol=1e-2)  # scaled by 1/(1-p)
    assert abs(y.float().mean().item() - 1.0) < 5e-3  # expectation kept
    y.float().sum().backward()
    assert torch.equal(x.grad != 0, kept)  # the gradient sees the same mask
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)  # the global generator seeds it
    assert torch.equal(drop.eval()(x), x)
    assert FastDropout(1.0).train()(x).abs().sum() == 0
    layer = Denoiser(SMALL).encoder.layers[0]
    assert all(isinstance(m, FastDropout) for m in (layer.dropout, layer.dropout1, layer.dropout2))


def test_condition_dropped_during_training():
    torch.manual_seed(0)
    # a plain x0 predictor: the Gaussian skip zero-initialises the output, hiding the condition
    model = Denoiser(dataclasses.replace(SMALL, dropout=0.0, cond_drop_prob=0.5, skip="none"))
    model.train()
    x, t, cond = torch.randn(64, 6, FEATURE_DIM), torch.full((64,), 10), torch.randn(64, 384)
    with torch.no_grad():
        train_out = model(x, t, cond)
        uncond = model(x, t, None)
    n_null = int(torch.isclose(train_out, uncond, atol=1e-5).flatten(1).all(1).sum())
    assert 15 < n_null < 49


def test_train_step_end_to_end(mocap):
    """Features -> noise -> denoiser -> joints -> reprojection loss -> finite gradients."""
    torch.manual_seed(0)
    model = Denoiser(dataclasses.replace(SMALL, cond_mode="none"))
    sched = schedulers.DDPMScheduler()
    x0 = torch.stack([torch.as_tensor(features.joints_to_features(j[:30])) for j in mocap[:2]])
    t = torch.randint(0, 50, (2,))
    x0_hat = model(sched.add_noise(x0, torch.randn_like(x0), t), t)
    joints = features.features_to_joints(x0_hat)  # (2, 30, 17, 3)
    R, tr = (
        torch.as_tensor(a, dtype=torch.float32) for a in sample_cameras(2, np.random.default_rng(0))
    )
    u, _ = project(world_to_camera(features.features_to_joints(x0), R[:, None], tr[:, None]))
    terms = losses.reprojection_loss(
        joints, R, tr, u, torch.ones(2, 30, 17), torch.ones(2, 30, dtype=torch.bool)
    )
    total, logs = losses.total_loss(terms)
    total.backward()
    assert torch.isfinite(total) and "w_reproj_vel" in logs
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# --- losses -------------------------------------------------------------------------------


def _adversarial_batch() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    b, n = 7, 12
    joints = torch.randn(b, n, 17, 3, generator=g) * 0.3 + torch.tensor([0.0, 1.0, 0.0])
    R = torch.eye(3).repeat(b, 1, 1)  # noqa: N806
    t = torch.tensor([0.0, -1.0, 5.0]).repeat(b, 1)
    u, _ = project(world_to_camera(joints, R[:, None], t[:, None]))
    u = u + 0.01 * torch.randn(u.shape, generator=g)
    conf, mask = torch.rand(b, n, 17, generator=g), torch.ones(b, n, dtype=torch.bool)
    u[1] = float("nan")  # 1: no finite keypoint
    conf[2, :, 3:] = 0.0  # 2: too few valid joints per frame
    t[3, 2] = -5.0  # 3: camera behind the subject
    mask[4] = False  # 4: zero length
    R[5, 0, 0] = float("inf")  # 5: broken camera
    u[6, ::2, :5] = float("nan")  # 6: partial NaNs, still usable
    conf[6, 1::3] = float("nan")
    return joints.requires_grad_(), R, t, u, conf, mask


def test_losses_never_nan_and_count_drops():
    joints, R, t, u, conf, mask = _adversarial_batch()  # noqa: N806
    terms = losses.reprojection_loss(joints, R, t, u, conf, mask)
    terms.update(losses.ray_consistency_loss(joints, R, t, u, conf, mask))
    total, logs = losses.total_loss(terms, {**losses.DEFAULT_WEIGHTS, "ray": 1.0})
    total.backward()
    assert torch.isfinite(total) and total > 0 and torch.isfinite(joints.grad).all()
    assert {k: int(logs[f"n_drop_{k}"]) for k in losses.DROP_REASONS} == {
        "empty": 1,
        "bad_camera": 1,
        "nan_2d": 1,
        "behind_camera": 1,
        "few_joints": 1,
    }
    per = losses.reprojection_loss(joints, R, t, u, conf, mask, reduction="none")["reproj_pos"]
    assert per[[0, 6]].gt(0).all() and per[1:6].eq(0).all()
    nothing = losses.reprojection_loss(joints, R, t, u, conf, torch.zeros_like(mask))
    assert nothing["reproj_pos"] == 0 and torch.isfinite(nothing["reproj_vel"])
    with pytest.raises(ValueError, match="unknown"):
        losses.total_loss(terms, {"reproj_typo": 1.0})


def test_ray_consistency_and_supervised():
    x_cam = torch.tensor([[0.5, -0.2, 3.0]])
    on_ray = losses.snap_to_rays(x_cam, torch.tensor([[0.5 / 3.0, -0.2 / 3.0]]))
    assert torch.allclose(on_ray, x_cam, atol=1e-6)
    off = losses.snap_to_rays(x_cam + torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.0, 0.0]]))
    assert torch.allclose(off, torch.tensor([[0.0, 0.0, 4.0]]))
    target = torch.randn(2, 5, 17, 3)
    target[1, 3] = float("nan")
    sup = losses.supervised_3d_loss(target + 0.1, target, torch.ones(2, 5, dtype=torch.bool))
    assert torch.allclose(sup["joints_3d"], torch.tensor(0.01)) and torch.isfinite(sup["vel_3d"])


def _depth_ratios(
    windows: np.ndarray, power: float, rng: np.random.Generator
) -> tuple[float, float]:
    """Mean (2D loss / 3D squared error) per draw, for near (< 4 m) and far (> 8 m) cameras."""
    n = len(windows)
    R, t = (torch.as_tensor(a) for a in sample_cameras(n, rng, distance_m=(2.0, 10.0)))  # noqa: N806
    dist = torch.linalg.norm(
        torch.einsum("nji,nj->ni", R, t) + torch.tensor([0.0, 1.0, 0.0]), dim=1
    )
    clean = torch.as_tensor(windows)  # (N, T, 17, 3)
    noisy = clean + 0.05 * torch.as_tensor(rng.normal(size=clean.shape))
    u, _ = project(world_to_camera(clean, R[:, None], t[:, None]))
    ones = torch.ones(clean.shape[:3], dtype=clean.dtype)
    mask = torch.ones(clean.shape[:2], dtype=torch.bool)
    pos = losses.reprojection_loss(noisy, R, t, u, ones, mask, depth_power=power, reduction="none")
    ratio = pos["reproj_pos"] / (noisy - clean).square().sum(-1).mean((1, 2))
    return float(ratio[dist < 4].mean()), float(ratio[dist > 8].mean())


def _random_windows(mocap: list[np.ndarray], n: int, length: int, rng) -> np.ndarray:
    """``n`` random ``length``-frame windows, each centred over the origin (the camera target)."""
    out = []
    for i in rng.integers(len(mocap), size=n):
        clip = mocap[i]
        s = rng.integers(0, len(clip) - length + 1)
        w = clip[s : s + length].astype(np.float64)
        r = root(w).mean(0)
        out.append(w - np.array([r[0], 0.0, r[2]]))
    return np.stack(out)


def test_theory_depth_weighting_tracks_3d_error(mocap):
    """p = 2 makes the 2D loss proportional to the 3D error (about 2/3) at every distance."""
    rng = np.random.default_rng(0)
    windows = _random_windows(mocap, 3000, 16, rng)
    near, far = _depth_ratios(windows, 2.0, rng)
    assert abs(near / far - 1.0) < 0.1 and 0.55 < near < 0.8
    near1, far1 = _depth_ratios(windows, 1.0, rng)
    near0, far0 = _depth_ratios(windows, 0.0, rng)
    assert near1 / far1 > 2.0 and near0 / far0 > 5.0


def test_text_encoder_offline():
    if not text_encoder.is_available():
        pytest.skip(f"{text_encoder.PACKAGE} is not installed")
    enc = text_encoder.TextEncoder()
    emb = enc.encode(["a person walks happily", "a person jumps", "a person walks happily"])
    assert emb.shape == (3, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    assert np.array_equal(emb[0], emb[2]) and enc.cache_size() == 2
    assert float(emb[0] @ emb[1]) < 0.99
