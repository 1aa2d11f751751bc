"""Pipeline report tasks: per-collection counts at a release, overlay pictures, a markdown file."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.storage import Lake, run_sql
from videomdm.storage.markers import DONE
from videomdm.storage.releases import release_versions
from videomdm.tasks.render import render_sheet

log = logging.getLogger(__name__)

_COUNTS_SQL = """
with v as (select video_id from videos where collection = ?)
select
  (select count(*) from v) as videos,
  (select count(*) from videos where collection = ? and status = 'failed') as failed_videos,
  (select count(*) from keypoints join v using (video_id)) as keypoint_rows,
  (select count(distinct video_id || '/' || track_id) from keypoints join v using (video_id))
    as tracks,
  (select count(*) from clips join v using (video_id)) as clips,
  (select coalesce(sum(n_frames), 0) from clips join v using (video_id)) as clip_frames,
  (select count(*) from motions join v using (video_id)) as motions
"""


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def release_counts(lake_root: str, release: str, collection: str) -> dict[str, int]:
    """Rows of one collection in each table, as the release pinned them."""
    lake = Lake(lake_root)
    at = release_versions(lake, release)
    t = run_sql(lake, _COUNTS_SQL, at=at, params=[collection, collection])
    return {k: int(v or 0) for k, v in t.to_pylist()[0].items()}


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def release_prompt(lake_root: str, release: str, collection: str) -> str | None:
    """The commonest clip caption of the collection in the release (a text to generate from)."""
    lake = Lake(lake_root)
    t = run_sql(
        lake,
        "select c.caption from clips c join videos v using (video_id) where v.collection = ? "
        "and c.caption is not null group by 1 order by count(*) desc, 1 limit 1",
        at=release_versions(lake, release),
        params=[collection],
    )
    return t.column("caption")[0].as_py() if t.num_rows else None


@task(cache_policy=NO_CACHE)
def overlay_sheets(
    lake_root: str, release: str, collection: str, out_dir: str, limit: int = 12
) -> list[tuple[str, str]]:
    """A contact sheet of keypoints drawn over each extracted video: (filename, png path)."""
    lake = Lake(lake_root)
    t = run_sql(
        lake,
        "select v.video_id, any_value(v.filename) as filename, "
        "arg_max(m.producer, m.updated_at) as producer from videos v join markers m "
        "on m.item_id = v.video_id and m.table_name = 'keypoints' and m.status = ? "
        "where v.collection = ? group by 1 order by 2, 1",
        at=release_versions(lake, release),
        params=[DONE, collection],
    )
    rows = t.to_pylist()
    if len(rows) > limit:
        log.info("drawing %d of %d videos (limit %d)", limit, len(rows), limit)
    out = []
    for r in rows[:limit]:
        path = Path(out_dir) / f"overlay_{r['video_id']}.png"
        render_sheet(lake, r["video_id"], path, r["producer"])
        out.append((r["filename"] or r["video_id"], str(path)))
    return out


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def write_text(path: str, text: str) -> str:
    """Write a text file (creating its folder); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return str(p)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def step_rows(steps: Mapping[str, Mapping[str, Any]], totals: Mapping[str, int]) -> list[dict]:
    """One row per pipeline step: what this run did and what the release holds."""
    i, e = steps.get("ingest", {}), steps.get("extract", {})
    c, m = steps.get("clips", {}), steps.get("lift", {})
    t = totals
    return [
        {
            "step": "ingest",
            "this run": f"{_n(i.get('files', 0), 'file')}: {i.get('new', 0)} new, "
            f"{i.get('updated', 0)} updated, {i.get('unchanged', 0)} unchanged, "
            f"{i.get('failed', 0)} failed",
            "in the release": f"{_n(t['videos'], 'video')} ({t['failed_videos']} failed)",
        },
        {
            "step": "extract",
            "this run": f"{_n(e.get('videos', 0), 'video')}: {e.get('done', 0)} done, "
            f"{e.get('no_person', 0)} with no person, {e.get('failed', 0)} failed; "
            f"{_n(e.get('rows', 0), 'row')}",
            "in the release": f"{_n(t['keypoint_rows'], 'keypoint row')}, "
            f"{_n(t['tracks'], 'track')}",
        },
        {
            "step": "clips",
            "this run": f"{_n(c.get('videos', 0), 'video')}: {_n(c.get('clips', 0), 'clip')}",
            "in the release": f"{_n(t['clips'], 'clip')}, {_n(t['clip_frames'], 'frame')}",
        },
        {
            "step": "lift",
            "this run": f"{_n(m.get('videos', 0), 'video')}: {_n(m.get('motions', 0), 'motion')}",
            "in the release": _n(t["motions"], "motion"),
        },
    ]


def _scalars(metrics: Mapping[str, Any] | str | None) -> dict[str, float | int]:
    m: Mapping[str, Any] = json.loads(metrics) if isinstance(metrics, str) else metrics or {}
    return {
        k: int(v) if float(v).is_integer() else round(float(v), 3)
        for k, v in m.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def float_metrics(metrics: Mapping[str, Any] | str | None) -> list[dict[str, Any]]:
    """The scalar metrics of a run (its JSON or dict), rounded, for a table."""
    return [{"metric": k, "value": v} for k, v in _scalars(metrics).items()]


def lifter_rows(metrics: Mapping[str, Any] | str | None) -> list[dict[str, Any]]:
    """Lifter metrics beside the fixed-depth baseline's (``baseline_<name>``) where it has one."""
    m = _scalars(metrics)
    return [
        {"metric": k, "lifter": v, "fixed-depth baseline": m.get(f"baseline_{k}", "")}
        for k, v in m.items()
        if not k.startswith("baseline_")
    ]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(none)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def report_markdown(
    out_dir: str,
    title: str,
    release: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    lifter: Mapping[str, Any],
    pictures: Sequence[tuple[str, str]],
    trained: Mapping[str, Any] | None,
) -> str:
    """The pipeline report: release, counts per step, lifter and training metrics, pictures."""
    pins = ", ".join(f"`{t}`={v}" for t, v in release["table_versions"].items())
    parts = [
        f"# {title}\n",
        f"Release **`{release['name']}`** pins {pins}. Query it with "
        f'`videomdm sql "..." --release {release["name"]}`.\n',
        "## Steps\n",
        markdown_table(steps),
        f"## Lifter `{lifter['run_id']}`\n",
        "Validation on held-out mocap seen through random cameras (errors in mm).\n",
        markdown_table(lifter_rows(lifter.get("metrics_json"))),
    ]
    if trained is not None:
        t, g = trained["train"], trained["generate"]
        parts += [
            f"## VideoMDM run `{t['run_id']}`\n",
            f"Trained on release `{release['name']}`; checkpoint `{t['checkpoint']}`.\n",
            markdown_table(float_metrics(t.get("metrics"))),
            f'### Generated from "{trained["prompt"]}"\n',
            *[f"![generated {i}]({_rel(p, out_dir)})\n" for i, p in enumerate(g["animations"])],
        ]
    parts.append("## Keypoints over the videos\n")
    parts += [f"### {name}\n\n![{name}]({_rel(p, out_dir)})\n" for name, p in pictures]
    return "\n".join(parts)


def _rel(path: str, start: str) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()
