"""What the ladder's rungs are configured by (``LadderConfig``, ``RUNGS``, ``LIFTERS``), share
(``LadderData``) and produce (``RungResult``): shared by ``ladder.py`` and ``ladder_scores.py``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from videomdm.errors import UserError
from videomdm.models.evaluation.ladder_recipes import RECIPES, Recipe
from videomdm.models.evaluation.protocol import PROTOCOL_LIFTER, View
from videomdm.models.mdm.config import GuidanceConfig
from videomdm.models.motion.sample import MotionSample

RUNGS = ("R0", "R1", "R2", "R3", "R4")
LIFTERS = ("in", "weak")  # in-domain and weak off-domain


@dataclass(frozen=True)
class LadderConfig:
    recipe: Recipe = RECIPES["default"]
    rungs: tuple[str, ...] = RUNGS
    steps: int = 2000  # training steps of every rung (the budget)
    mocap: str = ""  # the mocap folder (``../shared/assets/mocap``)
    target_source: str = "bandai_bvh"
    train_clips: int = 0  # the first N training clips of the target (0: all)
    val_clips: int = 0  # the first N held-out clips (0: all)
    cameras: int = 4  # random cameras per training clip
    seed: int = 0
    in_lifter_steps: int = 3000
    weak_lifter_steps: int = 30  # about the paper's lifter quality (docs/evaluation.md)
    encoder_steps: int = 1500  # the FID encoder (MotionEncoderConfig.steps)
    probe_ts: tuple[int, ...] = (2, 10, 25, 40)
    n_generate: int = 64
    n_prompts: int = 4
    per_prompt: int = 8
    sample_steps: int = 50
    cfg_scale: float = 2.5
    dps_scale: float = 3.0  # GuidanceConfig's; the rungs before the Gaussian skip used 10
    dps_max_step: float = GuidanceConfig.dps_max_step  # the rungs before it had none
    recon_strength: float = GuidanceConfig.strength  # the rungs before it started from noise (1)
    recon_lifters: tuple[str, ...] = LIFTERS

    def __post_init__(self) -> None:
        bad = sorted(set(self.rungs) - set(RUNGS)) + sorted(set(self.recon_lifters) - {*LIFTERS})
        if bad:
            raise UserError(f"unknown rungs or lifters {bad}; rungs are {', '.join(RUNGS)}")

    def protocol_key(self) -> str:
        """What the shared protocol depends on (a rung's data)."""
        keys: tuple[str, ...] = ("mocap", "target_source", "train_clips", "val_clips", "cameras")
        keys += ("seed", "in_lifter_steps", "weak_lifter_steps", "encoder_steps", "n_generate")
        return _digest({k: getattr(self, k) for k in keys} | {"lifter": PROTOCOL_LIFTER.to_dict()})

    def rung_key(self) -> str:
        """What a rung's result depends on: protocol, recipe, budget and scoring."""
        scoring = ("probe_ts", "n_prompts", "per_prompt", "sample_steps", "cfg_scale")
        guide = ("dps_scale", "dps_max_step", "recon_strength", "recon_lifters", "steps")
        d = {k: getattr(self, k) for k in (*scoring, *guide)}
        # the configs the recipe resolves to, so that a changed default is a new result
        configs = [self.recipe.configs(s, self.steps) for s in ("2d", "3d")]
        return _digest(d | {"protocol": self.protocol_key(), "recipe": repr(configs)})


def _digest(d: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class LadderData:
    """Everything the rungs share; built once per ``LadderConfig.protocol_key``."""

    samples: dict[str, list[MotionSample]]  # rung -> training samples (same order)
    cond: np.ndarray  # (N, 384) text embedding per training sample
    val: dict[str, list[View]]  # lifter -> held-out views (same cameras and keypoints)
    texts: dict[str, np.ndarray]  # held-out text -> (384,)
    lifter_scores: dict[str, dict[str, float]]  # lifter -> its scores on its held-out views
    encoder: dict[str, Any]  # FID encoder state (trained on the training clips)
    real_emb: np.ndarray  # (N, D) held-out real windows
    real_stats: dict[str, float]  # the generation metrics of real held-out windows
    prompts: list[str] = field(default_factory=list)  # held-out texts for generation


@dataclass(frozen=True)
class RungResult:
    recipe: str
    rung: str
    steps: int
    key: str  # LadderConfig.rung_key(): a stored result is reused only under the same key
    metrics: dict[str, float]
    lifters: dict[str, float]  # the lifters' own scores on the held-out views (recon_*)
    real: dict[str, float]  # the generation metrics of real held-out windows

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RungResult:
        return cls(
            d["recipe"],
            d["rung"],
            int(d["steps"]),
            d["key"],
            {k: float(v) for k, v in d["metrics"].items()},
            {k: float(v) for k, v in d["lifters"].items()},
            {k: float(v) for k, v in d["real"].items()},
        )
