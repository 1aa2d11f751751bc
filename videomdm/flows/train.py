"""Training flow: VideoMDM on a dataset release, recorded in ``runs`` with its checkpoint."""

from __future__ import annotations

import logging

from prefect import flow
from prefect.artifacts import create_table_artifact

from videomdm.config import get_settings
from videomdm.flows.context import flow_run_id
from videomdm.storage import open_lake
from videomdm.tasks.train import TrainRequest, TrainResult, train_task

log = logging.getLogger(__name__)


@flow(name="train-videomdm")
def train_flow(
    release: str | None = None,
    supervision: str = "2d",
    preset: str = "small",
    steps: int | None = None,
    lake: str | None = None,
    resume: str | None = None,
) -> TrainResult:
    """Train VideoMDM (2D-only supervision, or the 3D baseline) on ``release`` (None: the
    current tables), or resume run ``resume``; returns the run id, checkpoint and last loss."""
    req = TrainRequest(release, supervision, preset, steps, resume)  # type: ignore[arg-type]
    device = get_settings().resolved_device()
    result = train_task(open_lake(lake), req, device=device, flow_run_id=flow_run_id())
    create_table_artifact(
        key="train-metrics",
        table=[
            {
                "run": result.run_id,
                "release": release or "(current)",
                "step": result.step,
                "loss": result.loss,
                "samples": result.samples,
            }
        ],
        description=f"VideoMDM training ({supervision} supervision, {preset} preset)",
    )
    return result


@flow(name="retrain")
def retrain_flow(
    release: str,
    steps: int | None = None,
    preset: str = "small",
    supervision: str = "2d",
    lake: str | None = None,
) -> TrainResult:
    """Train VideoMDM on a release (what the ``retrain`` deployment runs on a new release)."""
    return train_flow(
        release=release, supervision=supervision, preset=preset, steps=steps, lake=lake
    )
