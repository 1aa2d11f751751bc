"""The ladder (DESIGN.md, "What is measured"): one recipe trained on the same mocap views at
equal budget, one thing changed per rung, each rung scored the same way.

Rungs (the target source's training clips, each seen by the same random cameras):

- ``R0`` 3D-supervised: x0 = the true 3D, MDM's loss;
- ``R1`` 2D only, x0 = the true 3D, clean keypoints (the equivalence in its pure form);
- ``R2`` 2D only, x0 = the true 3D, detector-like noisy keypoints;
- ``R3`` 2D only, x0 from an in-domain lifter (trained on every source's training clips);
- ``R4`` 2D only, x0 from a weak off-domain lifter (a few steps on the other sources only),
  the paper's regime.

Every rung has the same network (the ``small`` preset plus the recipe's overrides), steps,
windows, timesteps, noise and seed. Each reports: guided reconstruction of the held-out views
of both lifters (MPJPE, N-MPJPE, PA-MPJPE, acceleration error), how far x0_hat is from a
clean held-out input noised to small t (root-relative mm: does the network read x_t?), and
generation: FID and diversity of prompted samples, diversity among samples of one prompt,
bone-length variation and joint speed relative to the root (plausibility), and the share of
training steps whose gradient was clipped.

``build_protocol`` makes what the rungs share, ``run_ladder`` trains and scores (the config,
data and results: ``ladder_config.py``; the scores: ``ladder_scores.py``; the recipes:
``ladder_recipes.py``);
``write_rung`` / ``read_rungs`` keep each rung's result as ``<folder>/<recipe>/<rung>.json``
(a stored rung is reused only under the same ``LadderConfig.rung_key``). Callers:
``flows/ladder.py`` (``videomdm evaluate --ladder``) and ``benchmarks/ladder.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videomdm.models.evaluation.generation import (
    MotionEncoderConfig,
    embed,
    encoder_state,
    train_motion_encoder,
)
from videomdm.models.evaluation.ladder_config import LadderConfig, LadderData, RungResult
from videomdm.models.evaluation.ladder_recipes import Recipe
from videomdm.models.evaluation.ladder_scores import score_rung, table
from videomdm.models.evaluation.plausibility import (
    bone_length_variation,
    joint_speed,
    pairwise_distance,
)
from videomdm.models.evaluation.protocol import (
    PROTOCOL_LIFTER,
    View,
    score_predictions,
    synthetic_views,
)
from videomdm.models.lifter.train import split_by_clip, split_by_source, train_lifter
from videomdm.models.mdm.pipeline import NO_CAPTION
from videomdm.models.mdm.text_encoder import TextEncoder
from videomdm.models.mdm.trainer import Trainer
from videomdm.models.motion.cameras import project
from videomdm.models.motion.sample import MotionSample

log = logging.getLogger(__name__)

_LIFTER_OF = {"R3": "in", "R4": "weak"}


@dataclass(frozen=True)
class LadderResult:
    config: LadderConfig
    rungs: tuple[RungResult, ...]

    def table(self) -> str:
        """The markdown table of the rungs (``table``)."""
        return table(self.rungs)


# --- the protocol ------------------------------------------------------------------------


def _clips(cfg: LadderConfig) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Other sources' train / held-out clips, the target's train / held-out clips."""
    from videomdm.models.motion.mocap import load_mocap_dir

    others, target = split_by_source(list(load_mocap_dir(cfg.mocap, fps=30.0)), cfg.target_source)
    o_train, o_val = split_by_clip(others, seed=cfg.seed)
    train, val = split_by_clip(target, seed=cfg.seed)
    return o_train, o_val, train[: cfg.train_clips or None], val[: cfg.val_clips or None]


def _rung_samples(views: dict[str, list[View]]) -> dict[str, list[MotionSample]]:
    """Each rung's training samples from the same views (lifted by each lifter)."""
    out: dict[str, list[MotionSample]] = {}
    truth = [v.truth for v in views["in"]]
    out["R0"] = out["R2"] = truth
    clean = []
    for v in views["in"]:
        u, _ = project(v.truth_cam)  # the keypoints random_view made before adding noise
        ones = np.ones(u.shape[:2], np.float32)
        clean.append(dataclasses.replace(v.truth, u=u.astype(np.float32), conf=ones))
    out["R1"] = clean
    for rung, lifter in _LIFTER_OF.items():
        out[rung] = [v.lifted for v in views[lifter]]
    return out


def build_protocol(cfg: LadderConfig, text: TextEncoder | None = None) -> LadderData:
    """Lifters, training and held-out views, text embeddings, the FID encoder and the real
    reference (about 6 minutes on one thread at the defaults)."""
    o_train, o_val, train, val = _clips(cfg)
    t0 = time.perf_counter()
    lcfg = PROTOCOL_LIFTER
    lifters = {
        "in": train_lifter(o_train + train, o_val + val, lcfg, cfg.in_lifter_steps, cfg.seed)[0],
        "weak": train_lifter(o_train, o_val, lcfg, cfg.weak_lifter_steps, cfg.seed)[0],
    }
    log.info("lifters trained in %.0f s", time.perf_counter() - t0)
    # the same seed for each lifter: the same cameras and keypoints, lifted by each
    views = {
        k: synthetic_views(train, m, np.random.default_rng(cfg.seed), cfg.cameras)
        for k, m in lifters.items()
    }
    val_views = {
        k: synthetic_views(val, m, np.random.default_rng(cfg.seed + 1), 1)
        for k, m in lifters.items()
    }
    lifter_scores = {
        k: score_predictions(v, {"lifter": [x.lifted.joints for x in v]})["lifter"]
        for k, v in val_views.items()
    }
    text = text or TextEncoder()
    samples = _rung_samples(views)
    names = sorted({c.text or NO_CAPTION for c in val})
    return LadderData(
        samples=samples,
        cond=text.encode([s.text or NO_CAPTION for s in samples["R0"]]),
        val=val_views,
        texts=dict(zip(names, text.encode(names), strict=True)),
        lifter_scores=lifter_scores,
        **_generation_reference(cfg, train, val),
    )


def _generation_reference(cfg: LadderConfig, train: list[Any], val: list[Any]) -> dict[str, Any]:
    """The FID encoder, the real held-out windows' embeddings and statistics, the prompts."""
    enc_cfg = MotionEncoderConfig(steps=cfg.encoder_steps, seed=cfg.seed)
    encoder = train_motion_encoder([c.joints for c in train], enc_cfg)
    wins = [np.asarray(c.joints[: enc_cfg.window], np.float64) for c in val]
    wins = [w for w in wins if len(w) == enc_cfg.window]
    if len(wins) < 2:
        raise ValueError(f"need 2 held-out clips of >= {enc_cfg.window} frames, got {len(wins)}")
    rng = np.random.default_rng(cfg.seed)
    return {
        "encoder": encoder_state(encoder),
        "real_emb": embed(encoder, wins),
        "real_stats": {
            "within_prompt": pairwise_distance(np.stack(wins)),
            "bone_cv": float(np.mean([bone_length_variation(w) for w in wins])),
            "joint_speed": float(np.mean([joint_speed(w) for w in wins])),
        },
        "prompts": [val[i].text or NO_CAPTION for i in rng.integers(len(val), size=cfg.n_generate)],
    }


# --- one rung ----------------------------------------------------------------------------


def train_rung(
    data: LadderData, rung: str, recipe: Recipe, steps: int, seed: int = 0
) -> tuple[dict[str, Any], dict[str, float]]:
    """Train one rung: the trainer's state dict and its optimiser statistics."""
    model_cfg, cfg, dcfg = recipe.configs("3d" if rung == "R0" else "2d", steps)
    cfg = dataclasses.replace(cfg, seed=seed)
    trainer = Trainer(data.samples[rung], data.cond, model_cfg, cfg, dcfg)
    norms, losses = [], []
    t0 = time.perf_counter()
    while trainer.step < steps:
        logs = trainer.train_step()
        norms.append(logs["grad_norm"])
        losses.append(logs["total"])
        if trainer.step % 250 == 0:
            log.info(
                "%s %s step %d: loss %.4g, |g| %.3g (%.0f s)",
                recipe.name,
                rung,
                trainer.step,
                np.mean(losses[-250:]),
                np.median(norms[-250:]),
                time.perf_counter() - t0,
            )
    stats = {
        "train_s": time.perf_counter() - t0,
        "clipped_share": float(np.mean(np.asarray(norms) > cfg.grad_clip)),
        "grad_norm_median": float(np.median(norms)),
        "loss_first": float(np.mean(losses[:100])),
        "loss_last": float(np.mean(losses[-100:])),
    }
    return trainer.state_dict(), stats


def run_rung(data: LadderData, rung: str, cfg: LadderConfig) -> RungResult:
    """Train and score one rung of ``cfg.recipe``."""
    state, stats = train_rung(data, rung, cfg.recipe, cfg.steps, cfg.seed)
    metrics = stats | score_rung(state, data, cfg)
    log.info("%s %s: %s", cfg.recipe.name, rung, {k: round(v, 3) for k, v in metrics.items()})
    lifters = {
        f"recon_{k}_{m}": v for k in cfg.recon_lifters for m, v in data.lifter_scores[k].items()
    }
    return RungResult(
        cfg.recipe.name, rung, cfg.steps, cfg.rung_key(), metrics, lifters, dict(data.real_stats)
    )


def run_ladder(
    config: LadderConfig,
    protocol: LadderData | Callable[[], LadderData] | None = None,
    done: Mapping[str, RungResult] | None = None,
    on_rung: Callable[[RungResult], object] | None = None,
) -> LadderResult:
    """Train and score ``config.rungs`` of ``config.recipe``.

    ``protocol`` (or a function making it, called only when a rung needs it; default
    ``build_protocol(config)``) is what the rungs share; a rung in ``done`` whose key is
    ``config.rung_key()`` is reused as it is; ``on_rung`` sees each new result at once (to
    store it before the next rung starts).
    """
    done = done or {}
    data = protocol if isinstance(protocol, LadderData) else None
    results = []
    for rung in config.rungs:
        cached = done.get(rung)
        if cached is not None and cached.key == config.rung_key():
            log.info("%s %s: stored result reused", config.recipe.name, rung)
            results.append(cached)
            continue
        if data is None:
            data = protocol() if callable(protocol) else build_protocol(config)
        result = run_rung(data, rung, config)
        if on_rung is not None:
            on_rung(result)
        results.append(result)
    return LadderResult(config, tuple(results))


def write_rung(r: RungResult, folder: str | Path) -> Path:
    """Store one rung's result as ``<folder>/<recipe>/<rung>.json``."""
    path = Path(folder) / r.recipe / f"{r.rung}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(r.to_dict(), indent=1))
    log.info("wrote %s", path)
    return path


def read_rungs(cfg: LadderConfig, folder: str | Path) -> dict[str, RungResult]:
    """The stored results of ``cfg``'s rungs (whatever their key: ``run_ladder`` checks it)."""
    paths = {r: Path(folder) / cfg.recipe.name / f"{r}.json" for r in cfg.rungs}
    return {
        r: RungResult.from_dict(json.loads(p.read_text())) for r, p in paths.items() if p.exists()
    }
