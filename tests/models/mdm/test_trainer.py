"""VideoMDM training: canonical cameras, the 2D loss, bad samples, exact resume, DDP, sampling."""

from __future__ import annotations

import dataclasses
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from videomdm.errors import UserError
from videomdm.models.mdm.config import GUIDANCE_KINDS, DenoiserConfig, GuidanceConfig, TrainConfig
from videomdm.models.mdm.data import canonical_camera, clean_samples, training_motion
from videomdm.models.mdm.pipeline import VideoMDM
from videomdm.models.mdm.sampling import generate
from videomdm.models.mdm.trainer import Trainer, diffusion_loss, read_state
from videomdm.models.motion.cameras import project, sample_cameras
from videomdm.models.motion.features import features_to_joints, joints_to_features
from videomdm.models.motion.mocap import load_mocap_dir
from videomdm.models.motion.sample import MotionSample, to_body_size
from videomdm.models.motion.skeleton import MAX_SIZE_FACTOR, body_size_factor

TINY = DenoiserConfig(width=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0.0, cond_drop_prob=0.0)
FAST = TrainConfig(window=24, batch_size=4, steps=4, amp="none", log_every=1, warmup_steps=1)


@pytest.fixture(scope="module")
def motions(assets) -> list[np.ndarray]:
    clips = load_mocap_dir(assets / "mocap")
    return [c.joints.astype(np.float64) for c in clips if len(c.joints) >= 40][:12]


def _samples(motions, seed: int = 0) -> list[MotionSample]:
    rng = np.random.default_rng(seed)
    out = []
    for j in motions:
        centre = j[:, [11, 12]].mean((0, 1))
        R, t = sample_cameras(1, rng, distance_m=(3.0, 8.0), target=centre)  # noqa: N806
        u, _ = project(j @ R[0].T + t[0])
        conf = np.full(u.shape[:2], 0.9, np.float32)
        out.append(MotionSample(j.astype(np.float32), u.astype(np.float32), conf, R[0], t[0]))
    return out


def test_canonical_camera_sees_the_canonical_motion_as_the_world_one(motions):
    j = motions[0][:50]
    rng = np.random.default_rng(1)
    R, t = sample_cameras(1, rng, target=j[0, 11])  # noqa: N806
    u_world, _ = project(j @ R[0].T + t[0])
    canon = features_to_joints(torch.from_numpy(joints_to_features(j))[None].double())[0].numpy()
    rc, tc = canonical_camera(j, R[0], t[0])
    u_canon, _ = project(canon @ rc.T + tc)
    np.testing.assert_allclose(u_canon, u_world, atol=1e-5)


def test_bad_samples_are_dropped_or_masked_and_the_loss_stays_finite(motions):
    good = _samples(motions[:3])
    nan_2d = dataclasses.replace(good[0], u=np.full_like(good[0].u, np.nan))
    behind = dataclasses.replace(good[1], t=good[1].t * np.array([1, 1, -1.0]))
    empty = dataclasses.replace(
        good[2], joints=good[2].joints[:0], u=good[2].u[:0], conf=good[2].conf[:0]
    )
    nan_3d = dataclasses.replace(good[2], joints=good[2].joints * np.nan)
    kept, dropped = clean_samples([*good, nan_2d, behind, empty, nan_3d])
    assert len(kept) == 5 and dropped == {"too_short": 1, "nan_3d": 1}
    tr = Trainer(
        kept, np.zeros((len(kept), 384), np.float32), TINY, dataclasses.replace(FAST, batch_size=16)
    )
    logs = tr.train_step()
    assert np.isfinite(logs["total"]) and np.isfinite(logs["grad_norm"])
    assert logs["n_drop_nan_2d"] + logs["n_drop_behind_camera"] >= 1  # counted, not NaN


def test_body_size_gauge_keeps_the_keypoints_and_gives_the_population_size(motions):
    s = _samples(motions[:1])[0]
    big = dataclasses.replace(s, joints=s.joints * 1.3, t=s.t * 1.3)  # same 2D, 30% too big
    g = to_body_size(big)
    u_big, _ = project(big.joints.astype(np.float64) @ big.R.T + big.t)
    u_g, _ = project(g.joints.astype(np.float64) @ g.R.T + g.t)
    np.testing.assert_allclose(u_g, u_big, atol=1e-6)
    assert body_size_factor(g.joints) == pytest.approx(1.0, abs=1e-4)
    # the true and the oversized motion land on the same body
    np.testing.assert_allclose(g.joints, to_body_size(s).joints, atol=1e-4)
    assert body_size_factor(np.full((5, 17, 3), np.nan)) == 1.0
    assert body_size_factor(np.zeros((5, 17, 3))) == 1.0
    assert body_size_factor(s.joints * 1e-3) == MAX_SIZE_FACTOR  # broken, not a tiny person
    # 2D training gauges its lifted samples; the 3D baseline keeps the true size
    cond = np.zeros((1, 384), np.float32)
    raw = dataclasses.replace(FAST, x0_smoothing=0.0)
    tr_2d = Trainer([big], cond, TINY, raw)
    tr_3d = Trainer([big], cond, TINY, dataclasses.replace(raw, supervision="3d"))
    tr_off = Trainer([big], cond, TINY, dataclasses.replace(raw, size_gauge=False))
    np.testing.assert_allclose(tr_2d.samples[0].joints, g.joints)
    np.testing.assert_allclose(tr_3d.samples[0].joints, big.joints)
    np.testing.assert_allclose(tr_off.samples[0].joints, big.joints)


@torch.no_grad()
def _held_out(tr: Trainer, term: str) -> float:
    """One term of the loss on a fixed batch covering every noise level."""
    batch, t, noise = tr.batch_at(10_000)
    tr.model.eval()
    _, logs = diffusion_loss(tr.model, tr.scheduler, tr.norm, batch, t, noise, tr.cfg)
    return float(logs[term])


@pytest.mark.parametrize(("supervision", "term"), [("2d", "reproj_pos"), ("3d", "joints_3d")])
def test_training_lowers_the_loss(motions, supervision, term):
    samples = _samples(motions)
    cfg = dataclasses.replace(
        FAST, supervision=supervision, steps=60, batch_size=16, lr=1e-3, log_every=10
    )
    tr = Trainer(samples, np.zeros((len(samples), 384), np.float32), TINY, cfg)
    before = _held_out(tr, term)
    tr.fit()
    after = _held_out(tr, term)
    assert after < 0.7 * before, (before, after)


def test_resume_continues_exactly(motions, tmp_path):
    samples = _samples(motions)
    cond = np.random.default_rng(0).normal(size=(len(samples), 384)).astype(np.float32)
    cfg = dataclasses.replace(FAST, steps=6)
    straight = Trainer(samples, cond, TINY, cfg)
    straight.fit()
    first = Trainer(samples, cond, TINY, cfg)
    first.fit(steps=3)
    first.save(str(tmp_path / "ckpt.pt"), {"run_id": "x"})
    resumed = Trainer(samples, cond, TINY, cfg)
    resumed.load_state_dict(read_state(str(tmp_path / "ckpt.pt")))
    resumed.fit()
    for a, b in zip(straight.raw_model.parameters(), resumed.raw_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    sa, sb = straight.ema.module.state_dict(), resumed.ema.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match="window"):
        Trainer(samples, cond, TINY, dataclasses.replace(cfg, window=30)).load_state_dict(
            read_state(str(tmp_path / "ckpt.pt"))
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, port: int, samples, cond, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    tr = Trainer(samples, cond, TINY, FAST, rank=rank, world_size=2)
    logs = [tr.train_step() for _ in range(2)]
    loss = torch.tensor([lg["total"] for lg in logs])
    dist.all_reduce(loss)  # mean over ranks = the global batch's mean
    if rank == 0:
        out.put((loss / 2).tolist())
        out.put({k: v.numpy().copy() for k, v in tr.raw_model.state_dict().items()})  # by value
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process_with_the_doubled_batch(motions):
    samples = _samples(motions)
    cond = np.random.default_rng(0).normal(size=(len(samples), 384)).astype(np.float32)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, port, samples, cond, out)) for r in (0, 1)]
    for p in procs:
        p.start()
    ddp_loss, ddp_state = out.get(timeout=240), out.get(timeout=240)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    single = Trainer(samples, cond, TINY, dataclasses.replace(FAST, batch_size=8))
    single_loss = [single.train_step()["total"] for _ in range(2)]
    np.testing.assert_allclose(ddp_loss, single_loss, rtol=1e-4)
    for k, v in single.raw_model.state_dict().items():
        np.testing.assert_allclose(ddp_state[k], v.numpy(), rtol=1e-4, atol=1e-5)


def _rough(s: MotionSample, n: int = 50) -> MotionSample:
    """The first ``n`` frames (two windows of 24 and a tail of 2), jittered by 8 cm."""
    noise = np.random.default_rng(0).normal(0, 0.08, (n, 17, 3)).astype(np.float32)
    return dataclasses.replace(s, joints=s.joints[:n] + noise, u=s.u[:n], conf=s.conf[:n])


def _copying(tr: Trainer) -> VideoMDM:
    """The trainer's model, with an x0 'denoiser' that returns its input (and a sampler that
    keeps it: no rigid-bone projection)."""
    m = VideoMDM.from_checkpoint(tr.state_dict())
    m.denoiser.forward = lambda x, *args, **kwargs: x  # type: ignore[method-assign]
    m.diffusion = dataclasses.replace(m.diffusion, rigid_bones=False)
    return m


@pytest.mark.parametrize("kind", GUIDANCE_KINDS)
def test_generation_and_guided_reconstruction(motions, kind):
    samples = _samples(motions)
    cond = np.zeros((len(samples), 384), np.float32)
    raw = dataclasses.replace(FAST, steps=10, lr=1e-3, size_gauge=False)
    tr = Trainer(samples, cond, TINY, raw)
    tr.fit()
    m = VideoMDM.from_checkpoint(tr.state_dict())
    z = torch.zeros(2, 384)
    gen = generate(m.denoiser, m.normalizer, m.diffusion, z, 2, 30, steps=5, guidance_scale=2.0)
    assert gen.shape == (2, 30, 17, 3) and np.isfinite(gen).all()
    rough = _rough(samples[0])
    cfg = GuidanceConfig(kind=kind, steps=5, iters=5, final_iters=50)
    out = m.reconstruct(rough, cfg).in_world_of(rough)
    assert out.shape == rough.joints.shape and np.isfinite(out).all()

    def err2d(j):
        u, _ = project(j.astype(np.float64) @ rough.R.T + rough.t)
        return np.linalg.norm(u - rough.u, axis=-1).mean()

    if kind == "adam":  # fits x0 itself: tighter than the rough motion's 2D
        assert err2d(out) < 0.5 * err2d(rough.joints)
    else:  # with no step it is exactly the unguided DDIM sampler
        # fp32: the no-grad path takes the encoder's fused inference kernels, DPS cannot
        dps0 = GuidanceConfig(kind="dps", steps=5, dps_scale=0.0, amp="none")
        adam0 = GuidanceConfig(kind="adam", steps=5, iters=0, final_iters=0, amp="none")
        free, plain = (m.reconstruct(rough, c).joints for c in (dps0, adam0))
        np.testing.assert_allclose(free, plain, atol=1e-4)


def test_reconstruction_with_a_copying_denoiser_returns_its_input(motions):
    """The plumbing around the network (windows, features, canonical cameras, the way back to
    the caller's world frame) is exact: an x0 'denoiser' that returns its input, started at the
    last timestep, gives back the initial motion, also where it is far from the keypoints."""
    samples = _samples(motions)
    no_gauge = dataclasses.replace(FAST, size_gauge=False, x0_smoothing=0.0)
    m = _copying(Trainer(samples, np.zeros((len(samples), 384), np.float32), TINY, no_gauge))
    rough = _rough(samples[0])
    cfg = GuidanceConfig(kind="dps", dps_scale=0.0, strength=1e-3, amp="none")  # t = 0 only
    out = m.reconstruct(rough, cfg)
    np.testing.assert_allclose(out.t, rough.t)  # no gauge: the same world
    err = np.linalg.norm(out.joints - rough.joints, axis=-1)
    # measured: 7.6 mm mean, 29 mm max (the noise left at t = 0, integrated along the
    # trajectory); reading the camera rotation the wrong way round gives 68 mm / 121 mm
    assert err.mean() < 0.02 and err.max() < 0.06, (err.mean(), err.max())  # metres


def test_reconstruction_starts_from_the_clip_prepared_as_x0_was(motions):
    """With ``x0_keypoints_hz`` the trainer's x0 and a reconstruction's start are the same
    preparation of a clip: a copying denoiser returns the rough clip moved onto its keypoints
    (the 8 cm jitter gone from the image plane), where without it the jitter stays."""
    samples = _samples(motions)
    rough = _rough(samples[0])
    copy = GuidanceConfig(kind="dps", dps_scale=0.0, strength=1e-3, amp="none")  # t = 0 only
    err = {}
    for hz in (0.0, 1.0):
        cfg = dataclasses.replace(FAST, size_gauge=False, x0_smoothing=0.0, x0_keypoints_hz=hz)
        tr = Trainer(samples, np.zeros((len(samples), 384), np.float32), TINY, cfg)
        if hz:  # the trainer trains on the same preparation
            prepared = training_motion(samples[0], cfg, lifted=True)
            np.testing.assert_allclose(tr.samples[0].joints, prepared.joints)
        out = _copying(tr).reconstruct(rough, copy)
        cam = out.joints @ np.asarray(out.R).T + np.asarray(out.t)
        err[hz] = np.abs(project(cam)[0] - rough.u).mean()  # normalised image units
    # measured: 0.020 as lifted (8 cm at 3-8 m), 0.0012 prepared (what t = 0 adds back)
    assert err[1.0] < 0.2 * err[0.0], err


def test_evaluation_reconstructs_in_the_gauge_and_scores_in_the_camera_frame(motions):
    """A lifter that makes the body 30% too big, and a copying denoiser: in the gauge the
    reconstruction has the true size and lies where the truth does in the camera frame;
    without the gauge it keeps the lifter's size."""
    from videomdm.models.evaluation.protocol import to_camera

    s = _samples(motions[:1])[0]
    n = 50
    s = dataclasses.replace(s, joints=s.joints[:n], u=s.u[:n], conf=s.conf[:n])
    big = dataclasses.replace(s, joints=s.joints * 1.3, t=s.t * 1.3)
    copy = GuidanceConfig(kind="dps", dps_scale=0.0, strength=1e-3, amp="none")  # t = 0 only
    expected = body_size_factor(s.joints) * to_camera(s.joints, s)  # the truth in the gauge
    err = {}
    for gauge in (True, False):
        cfg = dataclasses.replace(FAST, size_gauge=gauge, x0_smoothing=0.0)  # copy it exactly
        m = _copying(Trainer([s], np.zeros((1, 384), np.float32), TINY, cfg))
        cam = to_camera(m.reconstruct(big, copy).in_world_of(big), big)
        err[gauge] = np.linalg.norm(cam - expected, axis=-1).mean()
    # gauged: the copy's few mm (measured 4 mm); not: the lifter's 30% too big (1.0 m)
    assert err[True] < 0.02 and err[False] > 0.5, err  # metres


def test_rigid_bone_prior_is_zero_for_mocap_and_grows_with_stretching(motions):
    from videomdm.models.mdm.losses import rigid_bone_loss

    j = torch.as_tensor(np.stack([m[:40] for m in motions[:3]]), dtype=torch.float32)
    mask = torch.ones(j.shape[:2])
    rigid = float(rigid_bone_loss(j, mask))
    assert rigid < 1e-3  # mocap keeps its bones (CV about 0.001-0.02)
    stretched = j.clone()
    stretched[:, ::2, 9] += 0.3  # the left wrist jumps away from its elbow every other frame
    assert float(rigid_bone_loss(stretched, mask)) > 10 * rigid
    mask[:, ::2] = 0  # the stretched frames masked out: rigid again
    assert float(rigid_bone_loss(stretched, mask)) < 1e-3
    # and it trains: the term is logged and weighted when lambda_bone is set
    samples = _samples(motions)
    cfg = dataclasses.replace(FAST, lambda_bone=10.0)
    tr = Trainer(samples, np.zeros((len(samples), 384), np.float32), TINY, cfg)
    tr.fit()
    assert "bone" in tr.history[-1] and "w_bone" in tr.history[-1]
    assert "bone" not in TrainConfig().weights()


def test_t_star_chains_denoise_below_t_star_and_train(motions):
    """The t* schedule: a share of batches are chains of one step per bucket below t*
    (decreasing), the others single steps above it; the chain's loss is finite and trains."""
    samples = _samples(motions)
    cond = np.zeros((len(samples), 384), np.float32)
    cfg = dataclasses.replace(FAST, t_star=12, t_star_buckets=4, steps=6, batch_size=8)
    tr = Trainer(samples, cond, TINY, cfg)
    ts = [tr.batch_at(s)[1] for s in range(200)]
    chains = [t for t in ts if t.ndim == 2]
    singles = [t for t in ts if t.ndim == 1]
    # the release's geometry: buckets of ceil(12 / 3) = 4 steps, t*_eff = 16, share 16 / 50
    assert 0.2 < len(chains) / len(ts) < 0.45, len(chains)
    assert all(int(t.min()) >= 16 for t in singles)
    for t in chains:
        assert t.shape == (8, 4)
        assert (t[:, :-1] > t[:, 1:]).all() and int(t.max()) < 16 and int(t.min()) >= 0
        assert ((t // 4) == torch.tensor([3, 2, 1, 0])).all()  # one step in each bucket
    step = next(s for s in range(200) if ts[s].ndim == 2)
    tr.step = step
    logs = tr.train_step()
    assert np.isfinite(logs["total"]) and logs["grad_norm"] > 0
    # off, the draws are the uniform ones of before
    plain = Trainer(samples, cond, TINY, dataclasses.replace(cfg, t_star=0))
    assert plain.batch_at(step)[1].shape == (8,)


def test_t_star_that_does_not_fit_the_schedule_is_one_clear_error(motions):
    samples = _samples(motions[:2])
    cfg = dataclasses.replace(FAST, t_star=45)
    with pytest.raises(UserError, match="t_star 45 with 4 buckets spans 60 steps"):
        Trainer(samples, np.zeros((2, 384), np.float32), TINY, cfg)
    with pytest.raises(UserError, match="t_star_buckets"):
        TrainConfig(t_star=12, t_star_buckets=1)
