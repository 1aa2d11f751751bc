"""Training flow: VideoMDM on a dataset release, recorded in ``runs`` with its checkpoint."""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from videomdm.config import get_settings
from videomdm.tasks.train import train_task

log = logging.getLogger(__name__)


@flow(name="train-videomdm")
def train_flow(
    release: str | None = None,
    supervision: str = "2d",
    preset: str = "small",
    steps: int | None = None,
    lake: str | None = None,
    resume: str | None = None,
) -> dict[str, Any]:
    """Train VideoMDM (2D-only supervision, or the 3D baseline) on ``release`` (None: the
    current tables), or resume run ``resume``; returns run id, checkpoint and metrics."""
    s = get_settings()
    lake = lake or s.lake
    result = train_task(
        lake,
        release,
        supervision,
        preset,
        steps,
        resume,
        device=s.resolved_device(),
        flow_run_id=str(flow_run.id) if flow_run.id else None,
    )
    m = result["metrics"]
    create_table_artifact(
        key="train-metrics",
        table=[
            {
                "run": result["run_id"],
                "release": release or "(current)",
                "step": m["step"],
                "loss": m["loss"],
                "samples": m["samples"],
            }
        ],
        description=f"VideoMDM training ({supervision} supervision, {preset} preset)",
    )
    return result
