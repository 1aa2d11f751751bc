"""Datasets read from a release: the training set of VideoMDM, and a collection's summary.

``training_set`` joins every finished lifted motion with its clip's keypoints (the newest
lifter's motions when several lifters lifted the same clips) and records its lineage: the
release, the table versions read, the lifter and the clips, so a run can say what it saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videomdm.errors import UserError
from videomdm.models.motion.sample import MotionSample
from videomdm.storage.codecs import motion_sample
from videomdm.storage.lake import Lake
from videomdm.storage.markers import DONE
from videomdm.storage.query import run_sql
from videomdm.storage.releases import release_versions
from videomdm.storage.runs import LIFTER, latest_run, lifter_id

_TRAINING_SQL = """
select m.clip_id, m.lifter_id, m.n_frames, m.fps, m.joints, m.cam_R, m.cam_t,
       c.u, c.conf, coalesce(c.caption, c.label) as text
from motions m
join clips c using (clip_id)
join markers k on k.table_name = 'motions' and k.item_id = m.video_id
     and k.producer = m.lifter_id and k.status = 'done'
order by m.lifter_id, m.clip_id
"""


@dataclass(frozen=True)
class Lineage:
    """What a training run read."""

    release: str | None
    table_versions: dict[str, int]
    lifter_id: str
    clip_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingSet:
    samples: list[MotionSample]
    lineage: Lineage


def training_set(lake: Lake, release: str | None = None) -> TrainingSet:
    """Every lifted clip of ``release`` (None: the tables as they are now) with its 2D."""
    at = release_versions(lake, release) if release else None
    rows = run_sql(lake, _TRAINING_SQL, at=at).to_pylist()
    if not rows:
        where = f"release {release!r}" if release else "the lake"
        raise UserError(f"no lifted clips in {where}; run `videomdm lift` first")
    lifter = _newest_lifter(lake, {r["lifter_id"] for r in rows})
    samples = [motion_sample(r) for r in rows if r["lifter_id"] == lifter]
    versions = at or {
        n: v for n in ("clips", "motions", "markers") if (v := lake.version(n)) is not None
    }
    return TrainingSet(samples, Lineage(release, versions, lifter, [s.clip_id for s in samples]))


def _newest_lifter(lake: Lake, ids: set[str]) -> str:
    run = latest_run(lake, LIFTER)
    current = lifter_id(run) if run else None
    return current if current in ids else sorted(ids)[-1]


# --- a collection in a release (the pipeline's report) ------------------------------------

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


@dataclass(frozen=True)
class CollectionCounts:
    """Rows of one collection in each table, as a release pinned them."""

    videos: int
    failed_videos: int
    keypoint_rows: int
    tracks: int
    clips: int
    clip_frames: int
    motions: int


@dataclass(frozen=True)
class ExtractedVideo:
    video_id: str
    filename: str
    extractor: str  # the newest extractor that finished it


def collection_counts(lake: Lake, release: str, collection: str) -> CollectionCounts:
    at = release_versions(lake, release)
    row = run_sql(lake, _COUNTS_SQL, at=at, params=[collection, collection]).to_pylist()[0]
    return CollectionCounts(**{k: int(v or 0) for k, v in row.items()})


def common_caption(lake: Lake, release: str, collection: str) -> str | None:
    """The commonest clip caption of the collection in the release (a text to generate from)."""
    t = run_sql(
        lake,
        "select c.caption from clips c join videos v using (video_id) where v.collection = ? "
        "and c.caption is not null group by 1 order by count(*) desc, 1 limit 1",
        at=release_versions(lake, release),
        params=[collection],
    )
    return t.column("caption")[0].as_py() if t.num_rows else None


def extracted_videos(lake: Lake, release: str, collection: str) -> list[ExtractedVideo]:
    """The collection's videos with finished keypoints in the release, by file name."""
    t = run_sql(
        lake,
        "select v.video_id, any_value(v.filename) as filename, "
        "arg_max(m.producer, m.updated_at) as producer from videos v join markers m "
        "on m.item_id = v.video_id and m.table_name = 'keypoints' and m.status = ? "
        "where v.collection = ? group by 1 order by 2, 1",
        at=release_versions(lake, release),
        params=[DONE, collection],
    )
    return [
        ExtractedVideo(r["video_id"], r["filename"] or r["video_id"], r["producer"])
        for r in t.to_pylist()
    ]
