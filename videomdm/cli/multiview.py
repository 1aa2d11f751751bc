"""`videomdm evaluate --multiview DIR`: the options, the flow call and the tables."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from videomdm.cli import OutFormat, _flow, _print_result, _settings, _start_api, console


@dataclass(frozen=True)
class MultiviewOptions:
    directory: Path
    views: list[str] | None
    calibration: Path | None
    lifter: str | None
    model: str | None
    camera: str
    out: Path | None
    sample_steps: int
    fmt: OutFormat


SHOWN = ("pa_mpjpe_mm", "mpjpe_seq_mm", "n_mpjpe_mm", "mpjpe_mm", "accel_error", "scale")


def evaluate_multiview(o: MultiviewOptions) -> None:
    """Run the flow; print the truth's quality, the per-person scores and the per-view
    summary (or the whole result as JSON)."""
    import pyarrow as pa

    _start_api()
    from videomdm.flows.multiview import MultiviewRequest, evaluate_multiview_flow

    req = MultiviewRequest(
        directory=str(o.directory),
        views=tuple(o.views or ()),
        calibration=None if o.calibration is None else str(o.calibration),
        lifter=o.lifter,
        model=o.model,
        camera=o.camera,
        sample_steps=o.sample_steps,
        out=str(o.out or Path("out/multiview")),
    )
    r = _flow(lambda: evaluate_multiview_flow(req, lake=_settings().lake))
    if o.fmt == "json":
        sys.stdout.write(json.dumps(dataclasses.asdict(r), default=float) + "\n")
        return
    console.print(f"frame offsets: {r.offsets}; lifter {r.lifter}")
    console.print("[bold]truth (triangulated from the other views)[/bold]")
    quality = [{k: _round(v) for k, v in q.items()} for q in r.quality]
    _print_result(pa.Table.from_pylist(quality), o.fmt)
    console.print("[bold]per person[/bold]")
    keep = ("view", "person", "method", "frames", *SHOWN)
    _print_result(pa.Table.from_pylist([{k: s[k] for k in keep} for s in r.scores]), o.fmt)
    console.print("[bold]per view[/bold]")
    rows = [{k: s[k] for k in keep if k != "person"} for s in r.summary]
    _print_result(pa.Table.from_pylist(rows), o.fmt)
    console.print(f"report {r.report}; pictures: {', '.join(r.pictures.values())}")


def _round(v: object) -> object:
    if isinstance(v, float):
        return round(v, 3)
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return v
