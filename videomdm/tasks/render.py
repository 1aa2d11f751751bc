"""Pictures of extracted keypoints: an overlay video or a contact sheet of frames."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import av
import cv2
import numpy as np

from videomdm.models.perception.video import iter_frame_batches
from videomdm.models.viz.overlay import contact_sheet, draw_people
from videomdm.storage import Lake, run_sql
from videomdm.storage.sources import local_path
from videomdm.tasks.extract import keypoint_arrays, latest_extractor, list_column

log = logging.getLogger(__name__)

People = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # frame -> boxes, kps, track ids


def load_people(lake: Lake, video_id: str, extractor: str) -> People:
    """Keypoints of one video grouped by frame."""
    t = run_sql(
        lake,
        "select frame, track_id, bbox, kp_x, kp_y, kp_score from keypoints "
        "where video_id = ? and extractor = ? order by frame, track_id",
        params=[video_id, extractor],
    )
    frames = t.column("frame").to_numpy()
    ids = t.column("track_id").to_numpy()
    boxes = list_column(t.column("bbox"), 4)  # (R, 4)
    kp = keypoint_arrays(t)  # (R, 17, 3)
    rows: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(frames):
        rows[int(f)].append(i)
    return {f: (boxes[ix], kp[ix], ids[ix]) for f, ix in rows.items()}


def video_uri(lake: Lake, video_id: str) -> str:
    t = run_sql(lake, "select uri from videos where video_id = ?", params=[video_id])
    if t.num_rows == 0:
        raise ValueError(
            f"no video with id {video_id!r}; see `videomdm sql 'select * from videos'`"
        )
    return t.column("uri")[0].as_py()


def render_overlay(
    lake: Lake,
    video_id: str,
    out: Path,
    extractor: str | None = None,
    max_frames: int | None = None,
) -> Path:
    """An H.264 mp4 of the video with boxes, track ids and skeletons drawn on."""
    extractor = extractor or latest_extractor(lake, video_id)
    people = load_people(lake, video_id, extractor)
    out.parent.mkdir(parents=True, exist_ok=True)
    with local_path(video_uri(lake, video_id)) as path, av.open(str(out), "w") as container:
        fps = container_fps(path)
        stream = None
        for batch in iter_frame_batches(path, batch_size=16, max_frames=max_frames):
            for idx, frame in zip(batch.indices, batch.frames, strict=True):
                img = _draw(frame, people.get(int(idx)))
                if stream is None:
                    stream = _video_stream(container, img.shape[1], img.shape[0], fps)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(_even(img), format="rgb24")))
        if stream is not None:
            container.mux(stream.encode(None))
    return out


def render_sheet(
    lake: Lake, video_id: str, out: Path, extractor: str | None = None, n: int = 8, cols: int = 4
) -> Path:
    """A PNG contact sheet of ``n`` frames spread over the video, drawn over."""
    extractor = extractor or latest_extractor(lake, video_id)
    people = load_people(lake, video_id, extractor)
    wanted = set(np.linspace(0, max(people) if people else 0, n).round().astype(int).tolist())
    tiles, labels = [], []
    with local_path(video_uri(lake, video_id)) as path:
        for batch in iter_frame_batches(path, batch_size=16):
            for idx, frame in zip(batch.indices, batch.frames, strict=True):
                if int(idx) in wanted:
                    tiles.append(_draw(frame, people.get(int(idx))))
                    labels.append(f"frame {int(idx)}")
    sheet = contact_sheet(tiles, cols=cols, tile_width=480, labels=labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out


def _draw(frame: np.ndarray, people: tuple[np.ndarray, np.ndarray, np.ndarray] | None):
    if people is None:
        return frame
    boxes, kps, ids = people
    return draw_people(frame, boxes, kps, ids)


def container_fps(path: str) -> float:
    with av.open(path) as c:
        rate = c.streams.video[0].average_rate
        return float(rate) if rate else 25.0


def _video_stream(container, width: int, height: int, fps: float):
    from fractions import Fraction

    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height = width - width % 2, height - height % 2
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "23", "preset": "veryfast"}
    return stream


def _even(img: np.ndarray) -> np.ndarray:
    """yuv420p needs even dimensions."""
    return np.ascontiguousarray(
        img[: img.shape[0] - img.shape[0] % 2, : img.shape[1] - img.shape[1] % 2]
    )
