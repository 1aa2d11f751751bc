"""Arrow schemas of every lake table, declared once.

``TABLES`` maps a table name to its ``TableSpec``: schema, key columns, and whether the table is
*small* (idempotent writes by merge on the key) or *big* (grows by appends only; idempotency comes
from a done-marker row in the small ``markers`` table written after the data commit).

Delta Lake has no fixed-size list type, so fixed-size vectors (17 keypoints, a 3x3 rotation) are
stored as lists; ``fixed_sizes`` records their length, and the DuckDB views cast them back to
``FLOAT[n]`` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from videomdm.errors import UserError

N_JOINTS = 17  # COCO-17, the canonical skeleton

_TS = pa.timestamp("us", tz="UTC")
_F32_LIST = pa.list_(pa.float32())


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    big: bool = False  # big tables: append only, never merged
    fixed_sizes: dict[str, int] = field(default_factory=dict)  # list column -> element count
    description: str = ""


VIDEOS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),  # first 16 hex of the content sha256
        pa.field("sha256", pa.string()),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("collection", pa.string()),
        pa.field("filename", pa.string()),
        pa.field("size_bytes", pa.int64()),
        pa.field("mtime", pa.float64()),  # seconds since epoch, for incremental re-ingest
        pa.field("fps", pa.float64()),
        pa.field("frame_count", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("codec", pa.string()),
        pa.field("rotation", pa.int32()),  # degrees counter-clockwise applied for upright display
        pa.field("caption", pa.string()),
        pa.field("status", pa.string(), nullable=False),  # ok | failed
        pa.field("error", pa.string()),
        pa.field("ingested_at", _TS),
        pa.field("flow_run_id", pa.string()),
    ]
)

KEYPOINTS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("extractor", pa.string(), nullable=False),
        pa.field("track_id", pa.int32(), nullable=False),
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("t", pa.float64()),  # seconds from the start of the video
        pa.field("bbox", _F32_LIST),  # x1, y1, x2, y2 in pixels
        pa.field("det_score", pa.float32()),
        pa.field("kp_x", _F32_LIST),  # 17 x in pixels, COCO order
        pa.field("kp_y", _F32_LIST),
        pa.field("kp_score", _F32_LIST),
    ]
)

CLIPS = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("extractor", pa.string()),
        pa.field("track_id", pa.int32()),
        pa.field("frame_start", pa.int32()),
        pa.field("frame_end", pa.int32()),  # exclusive
        pa.field("n_frames", pa.int32()),
        pa.field("fps", pa.float64()),
        pa.field("mean_kp_score", pa.float32()),
        pa.field("valid_fraction", pa.float32()),
        pa.field("filled_frames", pa.int32()),
        pa.field("u", _F32_LIST),  # (n_frames, 17, 2) flattened, normalised image coordinates
        pa.field("conf", _F32_LIST),  # (n_frames, 17) keypoint confidences, 0 where filled
        pa.field("intrinsics", _F32_LIST),  # fx, fy, cx, cy, width, height (pixels)
        pa.field("caption", pa.string()),
        pa.field("label", pa.string()),
        pa.field("created_at", _TS),
    ]
)

MOTIONS = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("lifter_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string()),
        pa.field("n_frames", pa.int32()),
        pa.field("fps", pa.float64()),
        pa.field("joints", _F32_LIST),  # (T, 17, 3) flattened, metres, gravity-aligned world, Y up
        pa.field("cam_R", _F32_LIST),  # 3x3 row-major, world -> camera
        pa.field("cam_t", _F32_LIST),  # 3
        pa.field("intrinsics", _F32_LIST),  # fx, fy, cx, cy, width, height
        pa.field("created_at", _TS),
    ]
)

RELEASES = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("table_versions", pa.map_(pa.string(), pa.int64())),
        pa.field("row_counts", pa.map_(pa.string(), pa.int64())),
        pa.field("notes", pa.string()),
        pa.field("created_at", _TS),
    ]
)

RUNS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),  # train-lifter | train | evaluate ...
        pa.field("release", pa.string()),
        pa.field("config_json", pa.string()),
        pa.field("metrics_json", pa.string()),
        pa.field("checkpoint_uri", pa.string()),
        pa.field("status", pa.string()),
        pa.field("started_at", _TS),
        pa.field("finished_at", _TS),
        pa.field("flow_run_id", pa.string()),
    ]
)

GENERATIONS = pa.schema(
    [
        pa.field("generation_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string()),  # the training run whose model sampled it
        pa.field("text", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("sample_index", pa.int32()),
        pa.field("n_frames", pa.int32()),
        pa.field("fps", pa.float64()),
        pa.field("guidance_scale", pa.float32()),
        pa.field("joints", _F32_LIST),  # (T, 17, 3) flattened, metres, canonical world, Y up
        pa.field("npy_uri", pa.string()),
        pa.field("animation_uri", pa.string()),
        pa.field("created_at", _TS),
    ]
)

# Done-markers for big-table writes: one row per (table, video or clip, producer) after the
# data commit landed; a producer with no marker has no rows that count (see storage.lake).
MARKERS = pa.schema(
    [
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("producer", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # done | no_person | too_short | failed
        pa.field("rows", pa.int64()),
        pa.field("data_version", pa.int64()),  # version of the big table holding the rows
        pa.field("error", pa.string()),
        pa.field("updated_at", _TS),
    ]
)

_SPECS = [
    TableSpec("videos", VIDEOS, ("video_id",), description="one video file"),
    TableSpec(
        "keypoints",
        KEYPOINTS,
        ("video_id", "extractor", "track_id", "frame"),
        big=True,
        fixed_sizes={"bbox": 4, "kp_x": N_JOINTS, "kp_y": N_JOINTS, "kp_score": N_JOINTS},
        description="one person in one frame",
    ),
    TableSpec(
        "clips",
        CLIPS,
        ("clip_id",),
        fixed_sizes={"intrinsics": 6},
        description="a usable run of one track",
    ),
    TableSpec(
        "motions",
        MOTIONS,
        ("clip_id", "lifter_id"),
        big=True,
        fixed_sizes={"cam_R": 9, "cam_t": 3, "intrinsics": 6},
        description="one lifted clip",
    ),
    TableSpec("releases", RELEASES, ("name",), description="a named dataset version"),
    TableSpec("runs", RUNS, ("run_id",), description="a training or evaluation run"),
    TableSpec("generations", GENERATIONS, ("generation_id",), description="one generated motion"),
    TableSpec(
        "markers", MARKERS, ("table_name", "item_id", "producer"), description="done-markers"
    ),
]

TABLES: dict[str, TableSpec] = {s.name: s for s in _SPECS}


def spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise UserError(f"unknown table {name!r}; valid tables: {', '.join(TABLES)}") from None
