"""The ladder (``evaluation.ladder``) and its runner (``benchmarks/ladder.py``) at a tiny
budget: every rung trained and scored, stored, read back, and its data what the rung says."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from videomdm.models.evaluation import ladder as ladder_mod
from videomdm.models.evaluation.ladder_config import LadderConfig, RungResult
from videomdm.models.evaluation.ladder_recipes import RECIPES
from videomdm.models.evaluation.ladder_scores import COLUMNS
from videomdm.models.motion.cameras import project

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ladder_bench", ROOT / "benchmarks" / "ladder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _boom(*args, **kwargs):
    raise AssertionError("a stored rung was trained again")


@pytest.mark.slow
def test_tiny_ladder_is_stored_and_read_back(tmp_path, tiny_ladder, bench, one_thread, monkeypatch):
    cfg = dataclasses.replace(tiny_ladder, recipe=RECIPES["skip"])
    result = bench.ladder(cfg, tmp_path)
    assert [r.rung for r in result.rungs] == ["R0", "R1"]
    for r in result.rungs:
        assert (r.recipe, r.steps, r.key) == ("skip", 3, cfg.rung_key())
        for key, _ in COLUMNS:
            values = r.lifters if key.startswith("recon_") and key not in r.metrics else r.metrics
            assert math.isfinite(values[key]), (r.rung, key)
        assert 0.0 <= r.metrics["clipped_share"] <= 1.0
        # returning the input is worse the noisier it is
        assert r.metrics["copy_t2"] < r.metrics["copy_t10"] < r.metrics["copy_t40"]
        assert math.isfinite(r.real["within_prompt"]) and r.real["bone_cv"] < 0.01
        stored = json.loads((tmp_path / "skip" / f"{r.rung}.json").read_text())
        assert RungResult.from_dict(stored) == r
    lines = result.table().splitlines()
    assert len(lines) == 6 and lines[2].startswith("| skip | R0 |")
    assert "lifters" in lines[4] and "real" in lines[5]
    png = tmp_path / "ladder_skip.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # stored rungs are read back: neither trained nor the protocol rebuilt
    monkeypatch.setattr(ladder_mod, "run_rung", _boom)
    monkeypatch.setattr(ladder_mod, "build_protocol", _boom)
    assert bench.ladder(cfg, tmp_path).rungs == result.rungs
    # another budget is another result
    with pytest.raises(AssertionError, match="trained again"):
        bench.ladder(dataclasses.replace(cfg, steps=4), tmp_path)

    # the rungs' data: same cameras, R1 clean keypoints of the truth, R2 noisy, R3/R4 lifted
    (proto_path,) = tmp_path.glob("protocol_*.pkl")
    data = pickle.loads(proto_path.read_bytes())
    s = data.samples
    assert len(s["R0"]) == 4 * 2 == len(s["R4"])
    for r0, r1, r3, r4 in zip(s["R0"], s["R1"], s["R3"], s["R4"], strict=True):
        cam = r0.joints.astype(np.float64) @ np.asarray(r0.R).T + r0.t
        np.testing.assert_allclose(r1.u, project(cam)[0], atol=1e-5)
        assert np.all(r1.conf == 1) and np.abs(r0.u - r1.u).mean() > 1e-4
        np.testing.assert_array_equal(r3.u, r0.u)
        np.testing.assert_array_equal(r4.u, r0.u)
        assert np.abs(r3.joints - r4.joints).mean() > 1e-3  # two different lifters


def test_config_rejects_unknown_rungs():
    with pytest.raises(ValueError, match="R9"):
        LadderConfig(rungs=("R0", "R9"))


def test_rung_key_follows_recipe_and_budget():
    base = LadderConfig()
    assert base.rung_key() == LadderConfig().rung_key()
    assert base.rung_key() != dataclasses.replace(base, steps=10).rung_key()
    assert base.rung_key() != dataclasses.replace(base, recipe=RECIPES["vel350"]).rung_key()
    # the rungs asked for do not change a rung's result
    assert base.rung_key() == dataclasses.replace(base, rungs=("R1",)).rung_key()


def test_recipes_build_valid_configs():
    model, train, diffusion = RECIPES["skip"].configs("2d", 7)
    assert (model.skip, model.skip_smoothing, model.width) == ("learned", 2.0, 128)
    assert (train.lambda_vel, train.steps, train.supervision) == (7.0, 7, "2d")
    model, train, diffusion = RECIPES["vel350"].configs("3d", 7)
    assert model.skip == "none" and train.supervision == "3d" and train.lambda_vel == 350.0
    assert not diffusion.rigid_bones  # the recipes measured before the projection keep none
    model, _, diffusion = RECIPES["default"].configs("2d", 7)
    assert model.skip == "gaussian" and diffusion.rigid_bones  # today's defaults
    model, _, diffusion = RECIPES["plain"].configs("2d", 7)
    assert model.skip == "none" and not diffusion.rigid_bones
