"""What a flow knows of its own run."""

from __future__ import annotations

from prefect.runtime import flow_run


def flow_run_id() -> str | None:
    """The current flow run's id (None outside a flow run), recorded with every write."""
    return str(flow_run.id) if flow_run.id else None
