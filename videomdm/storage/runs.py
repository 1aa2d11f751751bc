"""The runs registry: one ``runs`` row per training or evaluation run, with its checkpoint.

A run row holds its configuration and metrics as JSON; ``Run`` is the row decoded. A run is
recorded when it starts (``status = 'running'``, updated at every checkpoint) and again when
it ends (``'ok'``), always by merge on ``run_id``, so a resumed run keeps one row.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from videomdm.storage.lake import Lake, rows_to_table, utcnow
from videomdm.storage.query import run_sql

LIFTER, TRAIN, EVALUATE = "train-lifter", "train", "evaluate"  # the kinds of run


@dataclass(frozen=True)
class Run:
    run_id: str
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint_uri: str | None = None
    release: str | None = None
    status: str = "running"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    flow_run_id: str | None = None

    def finished(self, metrics: dict[str, Any]) -> Run:
        """This run, ended now with ``metrics``."""
        return replace(self, metrics=metrics, status="ok", finished_at=utcnow())


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def lifter_id(run: Run) -> str:
    """The ``lifter_id`` that motions lifted by this lifter run carry."""
    return f"lifter-{run.run_id}"


def record_run(lake: Lake, run: Run) -> None:
    """Upsert the run's row (config and metrics as JSON)."""
    row = {
        "run_id": run.run_id,
        "kind": run.kind,
        "release": run.release,
        "config_json": json.dumps(run.config, default=float),
        "metrics_json": json.dumps(run.metrics, default=float),
        "checkpoint_uri": run.checkpoint_uri,
        "status": run.status,
        "started_at": run.started_at or utcnow(),
        "finished_at": run.finished_at,
        "flow_run_id": run.flow_run_id,
    }
    lake.merge("runs", rows_to_table("runs", [row]), f"run.{run.kind}", {"run_id": run.run_id})


def latest_run(lake: Lake, kind: str) -> Run | None:
    """The newest finished run of ``kind`` (e.g. ``LIFTER``), or None."""
    t = run_sql(
        lake,
        "select * from runs where kind = ? and status = 'ok' order by finished_at desc limit 1",
        params=[kind],
    )
    return _decode(t.to_pylist()[0]) if t.num_rows else None


def get_run(lake: Lake, run_id: str, kind: str) -> Run | None:
    """Run ``run_id`` of ``kind``, or None."""
    t = run_sql(lake, "select * from runs where run_id = ? and kind = ?", params=[run_id, kind])
    return _decode(t.to_pylist()[0]) if t.num_rows else None


def _decode(row: dict[str, Any]) -> Run:
    return Run(
        run_id=row["run_id"],
        kind=row["kind"],
        config=json.loads(row["config_json"] or "{}"),
        metrics=json.loads(row["metrics_json"] or "{}"),
        checkpoint_uri=row["checkpoint_uri"],
        release=row["release"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        flow_run_id=row["flow_run_id"],
    )
