"""Drawing for eyeballing perception: boxes, track ids and COCO-17 skeletons over a video's
frames, as an H.264 mp4 (``render_overlay``) or a PNG contact sheet (``render_sheet``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from videomdm.models.perception.video import iter_frame_batches

People = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # frame -> boxes, kps, track ids

# COCO-17 limbs as (joint, joint) index pairs, the usual COCO keypoint skeleton.
COCO17_EDGES: tuple[tuple[int, int], ...] = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread RGB colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 200, 255]]], np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def draw_people(
    frame: np.ndarray,
    boxes: np.ndarray,
    keypoints: np.ndarray | None = None,
    track_ids: np.ndarray | None = None,
    kp_min_score: float = 0.3,
) -> np.ndarray:
    """Draw boxes (N, 4) xyxy, ids (N,) and skeletons (N, 17, 3) on a copy of RGB ``frame``."""
    out = np.ascontiguousarray(frame).copy()
    thick = max(1, round(max(out.shape[:2]) / 500))
    for i, box in enumerate(np.asarray(boxes)):
        tid = int(track_ids[i]) if track_ids is not None else i
        color = track_color(tid)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        if track_ids is not None:
            cv2.putText(
                out,
                str(tid),
                (x1, max(0, y1 - 4 * thick)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5 * thick,
                color,
                thick,
                cv2.LINE_AA,
            )
        if keypoints is not None:
            _draw_skeleton(out, keypoints[i], color, thick, kp_min_score)
    return out


def _draw_skeleton(
    img: np.ndarray, kp: np.ndarray, color: tuple[int, int, int], thick: int, min_score: float
) -> None:
    """Limbs and joints of one person (17, 3), in place; joints below ``min_score`` skipped."""
    ok = kp[:, 2] >= min_score
    pts = np.round(kp[:, :2]).astype(int)
    for a, b in COCO17_EDGES:
        if ok[a] and ok[b]:
            cv2.line(img, tuple(pts[a]), tuple(pts[b]), color, thick, cv2.LINE_AA)
    for j in np.nonzero(ok)[0]:
        cv2.circle(img, tuple(pts[j]), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)


def contact_sheet(
    frames: Sequence[np.ndarray],
    cols: int = 4,
    tile_width: int = 320,
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile RGB frames (any sizes) into one RGB image, ``cols`` per row, each ``tile_width`` wide.

    Tiles keep their aspect ratio and are padded to the tallest tile of the sheet.
    """
    if not frames:
        raise ValueError("contact_sheet needs at least one frame")
    tiles = []
    for i, f in enumerate(frames):
        h = max(1, round(f.shape[0] * tile_width / f.shape[1]))
        tile = cv2.resize(np.ascontiguousarray(f), (tile_width, h), interpolation=cv2.INTER_AREA)
        if labels is not None:
            cv2.putText(
                tile,
                labels[i],
                (4, 16),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                (255, 255, 0),
                1,
                cv2.LINE_AA,
            )
        tiles.append(tile)
    tile_h = max(t.shape[0] for t in tiles)
    rows = math.ceil(len(tiles) / cols)
    sheet = np.zeros((rows * tile_h, cols * tile_width, 3), np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * tile_h : r * tile_h + t.shape[0], c * tile_width : (c + 1) * tile_width] = t
    return sheet


def render_overlay(
    video_path: str, people: People, out: Path, max_frames: int | None = None
) -> Path:
    """An H.264 mp4 of the video with each frame's ``people`` drawn on."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(video_path) as c:
        rate = c.streams.video[0].average_rate
        fps = float(rate) if rate else 25.0
    with av.open(str(out), "w") as container:
        stream = None
        for batch in iter_frame_batches(video_path, batch_size=16, max_frames=max_frames):
            for idx, frame in zip(batch.indices, batch.frames, strict=True):
                img = _draw(frame, people.get(int(idx)))
                if stream is None:
                    stream = _video_stream(container, img.shape[1], img.shape[0], fps)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(_even(img), format="rgb24")))
        if stream is not None:
            container.mux(stream.encode(None))
    return out


def render_sheet(video_path: str, people: People, out: Path, n: int = 8, cols: int = 4) -> Path:
    """A PNG contact sheet of ``n`` frames spread over the tracked part of the video."""
    wanted = set(np.linspace(0, max(people) if people else 0, n).round().astype(int).tolist())
    tiles, labels = [], []
    for batch in iter_frame_batches(video_path, batch_size=16):
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


def _video_stream(container, width: int, height: int, fps: float):
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
