"""Sampling flows: generate motions from text, reconstruct a clip's 3D motion."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from videomdm.config import get_settings
from videomdm.models.mdm.sampling import GuidanceConfig
from videomdm.models.viz.lift_animation import animate_lift
from videomdm.tasks.generate import generate_task, load_model, reconstruct_task

log = logging.getLogger(__name__)


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
) -> dict[str, Any]:
    """``n`` motions of ``seconds`` for ``text`` from the newest model (or ``model``): per
    sample a ``(T, 17, 3)`` .npy in metres, a gif and a row in ``generations``."""
    if n < 1 or seconds <= 0:
        raise ValueError(f"n must be >= 1 and seconds > 0, got n={n}, seconds={seconds}")
    s = get_settings()
    lake = lake or s.lake
    m = load_model(lake, model, s.resolved_device())
    rows = generate_task(lake, m, text, n, seconds, out, seed, guidance_scale, steps)
    gifs = [r["animation_uri"] for r in rows]
    create_markdown_artifact(
        key="generated-motions",
        markdown=f"# {text}\n\nmodel `{m.run_id}`, {n} samples\n\n"
        + "\n".join(f"- `{g}`" for g in gifs),
    )
    return {"npy": [r["npy_uri"] for r in rows], "animations": gifs, "model": m.run_id}


@flow(name="reconstruct-clip")
def reconstruct_flow(
    clip_id: str,
    model: str | None = None,
    lake: str | None = None,
    strength: float = 1.0,
    seed: int = 0,
    out: str | None = None,
    guidance: str = "dps",
) -> dict[str, Any]:
    """3D motion of one clip sampled with its keypoints and camera as guidance (``guidance``
    one of ``GUIDANCE_KINDS``), written to ``motions`` with lifter_id ``videomdm``; ``out``
    also writes a gif beside the lifter's."""
    s = get_settings()
    lake = lake or s.lake
    m = load_model(lake, model, s.resolved_device())
    res = reconstruct_task(
        lake,
        m,
        clip_id,
        GuidanceConfig(kind=guidance, strength=strength),
        seed,
        str(flow_run.id) if flow_run.id else None,
    )
    result: dict[str, Any] = {
        "clip_id": clip_id,
        "model": m.run_id,
        "frames": len(res["joints_cam"]),
    }
    if out:
        gif = Path(out) / f"reconstruct_{clip_id}.gif"
        result["animation"] = str(
            animate_lift(
                gif,
                res["u"],
                res["conf"],
                res["joints_cam"],
                res["init_cam"],
                title=f"clip {clip_id}",
                labels=("VideoMDM", "lifter"),
            )
        )
    return result
