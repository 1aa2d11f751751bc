"""Release flows: name a dataset version and announce it; retrain when one is announced.

``release_flow`` pins every data table (``videomdm.storage.releases``) and emits the Prefect
event ``videomdm.release.created`` (resource ``videomdm.release.<name>``). The ``retrain``
deployment in prefect.yaml is triggered by that event with the release name as its parameter.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run

from videomdm.config import get_settings
from videomdm.storage import Lake
from videomdm.storage.releases import create_release

log = logging.getLogger(__name__)

RELEASE_CREATED = "videomdm.release.created"


def release_resource(name: str) -> dict[str, str]:
    """The event resource of a release: id ``videomdm.release.<name>``, name the release name."""
    return {"prefect.resource.id": f"videomdm.release.{name}", "prefect.resource.name": name}


@task(cache_policy=NO_CACHE)  # no retries: a retry after a commit that landed would say "exists"
def make_release(lake_root: str, name: str, notes: str | None, flow_run_id: str | None) -> dict:
    """Pin the current version of every data table under ``name`` (immutable)."""
    return create_release(Lake(lake_root), name, notes, flow_run_id)


@task(cache_policy=NO_CACHE)
def announce_release(release: dict[str, Any], lake_root: str) -> str | None:
    """Emit ``videomdm.release.created``; returns the event id (None when events are off)."""
    event = emit_event(
        RELEASE_CREATED,
        resource=release_resource(release["name"]),
        payload={
            "name": release["name"],
            "lake": lake_root,
            "table_versions": release["table_versions"],
            "row_counts": release["row_counts"],
            "notes": release["notes"],
        },
    )
    return str(event.id) if event is not None else None


@flow(name="release")
def release_flow(name: str, notes: str | None = None, lake: str | None = None) -> dict[str, Any]:
    """Create the release ``name`` over the lake as it is now, then announce it."""
    lake = lake or get_settings().lake
    run_id = str(flow_run.id) if flow_run.id else None
    release = make_release(lake, name, notes, run_id)
    event_id = announce_release(release, Lake(lake).root)
    create_table_artifact(
        key="release",
        table=[
            {"table": t, "version": v, "rows": release["row_counts"][t]}
            for t, v in release["table_versions"].items()
        ],
        description=f"Release `{name}`",
    )
    log.info("release %s pins %s", name, release["table_versions"])
    return {**release, "event_id": event_id}


@flow(name="retrain")
def retrain_flow(
    release: str,
    steps: int | None = None,
    preset: str = "small",
    supervision: str = "2d",
    lake: str | None = None,
) -> dict[str, Any]:
    """Train VideoMDM on a release (what the ``retrain`` deployment runs on a new release)."""
    from videomdm.flows.train import train_flow  # torch loads only when training

    return train_flow(
        release=release, supervision=supervision, preset=preset, steps=steps, lake=lake
    )
