"""Release flow: name a dataset version and announce it.

``release_flow`` pins every data table (``videomdm.storage.releases``) and emits the Prefect
event ``videomdm.release.created`` (resource ``videomdm.release.<name>``). The ``retrain``
deployment in prefect.yaml (``flows.train.retrain_flow``) is triggered by that event with the
release name as its parameter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from videomdm.flows.context import flow_run_id
from videomdm.storage import Lake, open_lake
from videomdm.storage.releases import Release, create_release

log = logging.getLogger(__name__)

RELEASE_CREATED = "videomdm.release.created"


@dataclass(frozen=True)
class Announced:
    release: Release
    event_id: str | None  # None when events are off


def release_resource(name: str) -> dict[str, str]:
    """The event resource of a release: id ``videomdm.release.<name>``, name the release name."""
    return {"prefect.resource.id": f"videomdm.release.{name}", "prefect.resource.name": name}


@task(cache_policy=NO_CACHE)  # no retries: a retry after a commit that landed would say "exists"
def make_release(lake: Lake, name: str, notes: str | None, run_id: str | None) -> Release:
    """Pin the current version of every data table under ``name`` (immutable)."""
    return create_release(lake, name, notes, run_id)


@task(cache_policy=NO_CACHE)
def announce_release(release: Release, lake_root: str) -> str | None:
    """Emit ``videomdm.release.created``; returns the event id (None when events are off)."""
    event = emit_event(
        RELEASE_CREATED,
        resource=release_resource(release.name),
        payload={
            "name": release.name,
            "lake": lake_root,
            "table_versions": release.table_versions,
            "row_counts": release.row_counts,
            "notes": release.notes,
        },
    )
    return str(event.id) if event is not None else None


@flow(name="release")
def release_flow(name: str, notes: str | None = None, lake: str | None = None) -> Announced:
    """Create the release ``name`` over the lake as it is now, then announce it."""
    lk = open_lake(lake)
    release = make_release(lk, name, notes, flow_run_id())
    event_id = announce_release(release, lk.root)
    create_table_artifact(
        key="release",
        table=[
            {"table": t, "version": v, "rows": release.row_counts[t]}
            for t, v in release.table_versions.items()
        ],
        description=f"Release `{name}`",
    )
    log.info("release %s pins %s", name, release.table_versions)
    return Announced(release, event_id)
