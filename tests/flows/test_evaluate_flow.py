"""`videomdm evaluate` as a real flow over real mocap: the in-domain protocol (the current
lifter and its split) and the off-domain one (a lifter pretrained on the other sources), at
a few training steps so that only the plumbing and the bookkeeping are under test."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from videomdm.flows.evaluate import EvaluationConfig, evaluate_flow
from videomdm.flows.motion import train_lifter_flow
from videomdm.models.lifter.train import split_by_source
from videomdm.models.motion.mocap import load_mocap_dir
from videomdm.storage import Lake, run_sql

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

TINY = EvaluationConfig(
    steps=3, cameras=1, n_generate=0, strengths=(1.0,), guidances=("dps",), sample_steps=5
)


@pytest.fixture(scope="module")
def two_sources(assets) -> list[str]:
    return [
        str(assets / "mocap" / "cmu_bvh_subject131"),
        str(assets / "mocap" / "animated_drawings_bvh"),
    ]


def _check_scores(recon: dict, methods: set[str]) -> None:
    assert set(recon) == methods
    for scores in recon.values():
        assert set(scores) == {"mpjpe_mm", "pa_mpjpe_mm", "n_mpjpe_mm", "accel_error"}
        assert all(math.isfinite(v) and v > 0 for v in scores.values())


def test_off_domain_protocol_trains_its_own_lifter_on_the_other_sources(
    lake_root, two_sources, tmp_path
):
    out = tmp_path / "eval"
    cfg = dataclasses.replace(TINY, target_source="cmu_bvh", lifter_steps=10)
    m = evaluate_flow(two_sources, cfg, out=str(out), lake=lake_root)
    _check_scores(m.reconstruction, {"lifter", "videomdm_2d dps", "mdm_3d dps"})
    assert m.generation == {}  # n_generate=0 skips it
    # 4 cmu clips: 3 train the models (1 camera each), 1 is scored; mixamo trained the lifter
    assert (m.train_clips, m.val_clips, m.views) == (3, 1, 3)
    assert m.lifter["lifter_on_other_sources"]["mpjpe_mm"] > 0
    assert Path(m.pictures["reconstruction"]).exists()
    assert (out / "videomdm_2d.pt").exists() and (out / "mdm_3d.pt").exists()
    run = run_sql(Lake(lake_root), "select * from runs where kind = 'evaluate'").to_pylist()
    assert len(run) == 1
    config = json.loads(run[0]["config_json"])
    assert config["target_source"] == "cmu_bvh" and config["lifter_steps"] == 10
    assert "lifter_run" not in config  # no lifter was read from the lake


def test_in_domain_protocol_uses_the_current_lifter_and_its_split(lake_root, two_sources, tmp_path):
    trained = train_lifter_flow(two_sources, steps=10, lake=lake_root)
    m = evaluate_flow(two_sources, TINY, out=str(tmp_path), lake=lake_root)
    _check_scores(m.reconstruction, {"lifter", "videomdm_2d dps", "mdm_3d dps"})
    runs = run_sql(Lake(lake_root), "select * from runs").to_pylist()
    lifter_run = next(r for r in runs if r["kind"] == "train-lifter")
    held_out = json.loads(lifter_run["metrics_json"])["val_clips"]
    assert m.val_clips == len(held_out) and m.train_clips == 8 - len(held_out)
    config = json.loads(next(r for r in runs if r["kind"] == "evaluate")["config_json"])
    assert config["lifter_run"] == lifter_run["run_id"] and trained.checkpoint_uri


def test_split_by_source_names_the_sources_it_has(assets):
    clips = load_mocap_dir(assets / "mocap" / "cmu_bvh_subject131", fps=30)
    clips += load_mocap_dir(assets / "mocap" / "animated_drawings_bvh", fps=30)
    others, target = split_by_source(clips, "mixamo_bvh")
    assert {c.source for c in target} == {"mixamo_bvh"} and {c.source for c in others} == {
        "cmu_bvh"
    }
    assert len(others) + len(target) == len(clips)
    with pytest.raises(ValueError, match=r"'bandai_bvh'.*\['cmu_bvh', 'mixamo_bvh'\]"):
        split_by_source(clips, "bandai_bvh")
    with pytest.raises(ValueError, match="no other source"):
        split_by_source(target, "mixamo_bvh")
