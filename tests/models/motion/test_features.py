"""Motion features: the round trip to joints on real mocap, padding, the layout, the normaliser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videomdm.models.motion import features
from videomdm.models.motion.features import Normalizer
from videomdm.models.motion.layout import FEATURE_DIM, FEATURE_LAYOUT


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_round_trip_real_mocap(mocap, dtype):
    for joints in mocap:
        feats = torch.as_tensor(features.joints_to_features(joints), dtype=dtype)
        back = features.features_to_joints(feats[None])[0].double().numpy()  # (T, 17, 3)
        assert np.abs(back - features.canonicalize(joints)).max() < 1e-5


def test_features_padding_and_layout(mocap):
    a, b = (features.joints_to_features(j) for j in mocap[:2])
    n = max(len(a), len(b))
    batch = torch.zeros(2, n, FEATURE_DIM)
    batch[0, : len(a)], batch[1, : len(b)] = torch.as_tensor(a), torch.as_tensor(b)
    out = features.features_to_joints(batch)  # (2, n, 17, 3)
    assert torch.allclose(
        out[1, : len(b)], features.features_to_joints(torch.as_tensor(b)[None])[0]
    )
    assert sum(s.stop - s.start for s in FEATURE_LAYOUT.values()) == FEATURE_DIM
    with pytest.raises(ValueError):
        features.joints_to_features(np.zeros((10, 16, 3)))


def test_normalizer_round_trip(mocap, tmp_path):
    feats = [features.joints_to_features(j) for j in mocap]
    norm = Normalizer.fit(feats)
    x = torch.as_tensor(feats[0])
    z = norm.normalize(x)
    assert z.mean().abs() < 1.0 and torch.allclose(norm.denormalize(z), x, atol=1e-5)
    norm.save(tmp_path / "norm.pt")
    loaded = Normalizer.load(tmp_path / "norm.pt")
    assert torch.equal(loaded.mean, norm.mean) and torch.equal(loaded.std, norm.std)


def test_rigid_features_fix_the_bones_and_keep_the_features_consistent(mocap):
    from videomdm.models.evaluation.plausibility import bone_length_variation

    joints = next(m for m in mocap if len(m) >= 60)[:60].astype(np.float64)
    clean = torch.as_tensor(features.joints_to_features(joints))[None]
    g = torch.Generator().manual_seed(0)
    noisy_joints = (
        features.features_to_joints(clean)[0].numpy()
        + 0.02 * torch.randn(60, 17, 3, generator=g, dtype=torch.float64).numpy()
    )
    noisy = torch.as_tensor(features.joints_to_features(noisy_joints))[None]  # consistent
    rigid = features.rigid_features(noisy)
    out = features.features_to_joints(rigid)[0].numpy()
    assert bone_length_variation(noisy_joints) > 0.05
    assert bone_length_variation(out) < 1e-5  # every rigid bone at one length
    # the direction of each bone and the motion are kept: the joints move by about the noise
    # (measured 34 mm for 32 mm of noise: length corrections add up down each limb)
    before = features.features_to_joints(noisy)[0].numpy()  # its canonical frame
    assert np.linalg.norm(out - before, axis=-1).mean() < 0.045
    # the velocity channels move with the joints: the features stay self-consistent (up to
    # the heading, which the new hips and shoulders turn by a little)
    again = features.joints_to_features(out)
    vel = FEATURE_LAYOUT["local_vel"]
    stale = np.abs(noisy[0, :, vel].numpy() - again[:, vel]).max()
    moved = np.abs(rigid[0, :, vel].numpy() - again[:, vel]).max()
    assert moved < 0.01 < stale, (moved, stale)  # m per frame; measured 4.7 mm vs 165 mm
    # a real body is left almost as it is (the spine bends, so the hip-shoulder "bone" does
    # change a little: measured 47 mm at most, on a wrist); padding changes no real frame
    change = (features.rigid_features(clean) - clean)[..., FEATURE_LAYOUT["local_pos"]].abs()
    assert change.mean() < 0.01 and change.max() < 0.06
    padded = torch.cat([noisy, torch.zeros(1, 20, FEATURE_DIM)], dim=1)
    mask = torch.arange(80)[None] < 60
    torch.testing.assert_close(features.rigid_features(padded, mask)[:, :60], rigid)
