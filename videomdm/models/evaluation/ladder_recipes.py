"""The ladder's recipes: each a set of overrides of the small preset's configs, trained on
every rung (``ladder.py``). ``default`` is today's presets; the others are what the ladder
measured against them (docs/evaluation.md, "What the ladder showed").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from videomdm.config import preset
from videomdm.models.mdm.config import DenoiserConfig, DiffusionConfig, TrainConfig

Overrides = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Recipe:
    """Overrides of the three configs as ``(field, value)`` pairs (hashable, printable)."""

    name: str = "default"
    train: Overrides = ()
    model: Overrides = ()
    diffusion: Overrides = ()

    def configs(
        self, supervision: str, steps: int
    ) -> tuple[DenoiserConfig, TrainConfig, DiffusionConfig]:
        model, cfg = preset("small", "3d" if supervision == "3d" else "2d", steps)
        return (
            dataclasses.replace(model, **dict(self.model)),
            dataclasses.replace(cfg, **dict(self.train)),
            DiffusionConfig(**dict(self.diffusion)),
        )


_SKIP = (("skip", "learned"), ("skip_smoothing", 2.0))
_PLAIN = (("skip", "none"),)  # the denoiser before the Gaussian skip
_FREE = (("rigid_bones", False),)  # sampling without the rigid-bone projection
RECIPES: dict[str, Recipe] = {
    # today's defaults: the Gaussian skip, rigid-bone sampling, lambda_vel 7, x0 made
    # consistent with the keypoints
    "default": Recipe(),
    # the same without the rigid-bone projection while sampling
    "free": Recipe("free", diffusion=_FREE),
    # the default before the Gaussian skip: a plain x0 predictor, lambda_vel 7
    "plain": Recipe("plain", model=_PLAIN, diffusion=_FREE),
    # the release's t* schedule (TrainConfig.t_star): below t* the input is the model's own chain
    "tstar": Recipe("tstar", train=(("t_star", 12),)),
    # x0 as lifted (TrainConfig.x0_keypoints_hz off: the default before it)
    "lifted": Recipe("lifted", train=(("x0_keypoints_hz", 0.0),)),
    # the paper's 2D velocity weight, the default before the ladder (LOG, H(c))
    "vel350": Recipe("vel350", train=(("lambda_vel", 350.0),), model=_PLAIN, diffusion=_FREE),
    # x0_hat = a(t) * S(x_t) + F with S a Gaussian of 2 frames (DenoiserConfig.skip)
    "skip": Recipe("skip", model=_SKIP, diffusion=_FREE),
    # the same, the skip only below step 10 (plain x0 prediction above: no noise carried)
    "skip10": Recipe("skip10", model=(*_SKIP, ("skip_max_t", 10)), diffusion=_FREE),
    # the skip, and a prior on rigid bones against the noise it passes through
    "skip_bone": Recipe("skip_bone", train=(("lambda_bone", 10.0),), model=_SKIP, diffusion=_FREE),
}
