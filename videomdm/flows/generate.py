"""Sampling flows: generate motions from text, reconstruct a clip's 3D motion."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from videomdm.config import get_settings
from videomdm.errors import UserError
from videomdm.flows.context import flow_run_id
from videomdm.models.evaluation.plausibility import describe_samples as describe_samples_text
from videomdm.models.mdm.config import GuidanceConfig
from videomdm.storage import open_lake
from videomdm.tasks.generate import (
    GeneratedMotion,
    ReconstructionPictures,
    describe_samples,
    draw_reconstruction,
    generate_motions,
    load_clip,
    load_model,
    play_generations,
    reconstruct_clip,
    save_generations,
    save_reconstruction,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generated:
    model: str  # run id (or checkpoint name)
    motions: list[GeneratedMotion] = field(default_factory=list)
    player: str | None = None  # HTML with every sample side by side
    # joint_speed_mps, bone_length_cv, spread_m (``evaluation.plausibility.sample_stats``)
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Reconstructed:
    clip_id: str
    model: str
    frames: int
    pictures: ReconstructionPictures | None = None  # with ``out``: gif, mp4, HTML player


@flow(name="generate-motion")
def generate_flow(
    text: str,
    n: int = 4,
    seconds: float = 4.0,
    out: str = "out",
    model: str | None = None,
    lake: str | None = None,
    seed: int = 0,
    guidance_scale: float = 2.5,
    steps: int = 50,
) -> Generated:
    """``n`` motions of ``seconds`` for ``text`` from the newest model (or ``model``): per
    sample a ``(T, 17, 3)`` .npy in metres, a gif and a row in ``generations``."""
    if n < 1 or seconds <= 0:
        raise UserError(f"n must be >= 1 and seconds > 0, got n={n}, seconds={seconds}")
    lk = open_lake(lake)
    m = load_model(lk, model, get_settings().resolved_device())
    joints = generate_motions(m, text, n, seconds, steps, guidance_scale, seed)
    saved = save_generations(lk, m, text, joints, out, seed, guidance_scale)
    player = play_generations(text, joints, m.fps, out, seed)
    stats = describe_samples(joints, m.fps)
    create_markdown_artifact(
        key="generated-motions",
        markdown=f"# {text}\n\nmodel `{m.name}`, {n} samples; player `{player}`\n\n"
        + "\n".join(f"- `{g.animation}`" for g in saved)
        + f"\n\n{describe_samples_text(stats)}",
    )
    return Generated(m.name, saved, player, stats)


@flow(name="reconstruct-clip")
def reconstruct_flow(
    clip_id: str,
    model: str | None = None,
    lake: str | None = None,
    strength: float = GuidanceConfig.strength,
    seed: int = 0,
    out: str | None = None,
    guidance: str = "dps",
) -> Reconstructed:
    """3D motion of one clip sampled with its keypoints and camera as guidance (``guidance``
    one of ``GUIDANCE_KINDS``), written to ``motions`` with lifter_id ``videomdm``; ``out``
    also gets pictures: a gif beside the lifter's, an mp4 of the clip beside the 3D motion
    (seen from the camera and the side) and the HTML player."""
    cfg = GuidanceConfig(kind=guidance, strength=strength)  # type: ignore[arg-type]
    lk = open_lake(lake)
    clip = load_clip(lk, clip_id)
    m = load_model(lk, model, get_settings().resolved_device())
    rec = reconstruct_clip(m, clip.sample, cfg, seed)
    save_reconstruction(lk, clip.clip, rec, m.name, flow_run_id())
    pictures = draw_reconstruction(lk, out, clip, rec) if out else None
    return Reconstructed(clip_id, m.name, len(rec.joints), pictures)
