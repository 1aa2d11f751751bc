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
