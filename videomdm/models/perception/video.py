"""Video probing and decoding with PyAV: what a video is (``probe_video``), and upright RGB
frame batches, streamed, never the whole video in memory.

Frames are decoded with FFmpeg's own threading (``thread_type = "AUTO"``) and, by default, in a
background thread that feeds a small bounded queue, so decoding overlaps with model inference
(the ONNX Runtime and FFmpeg calls both release the GIL). Rotation metadata (the display
matrix, or the legacy ``rotate`` tag) is applied so every frame comes out upright.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import av
import numpy as np

log = logging.getLogger(__name__)

T = TypeVar("T")


class VideoDecodeError(ValueError):
    """A video file could not be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video is: the ``videos`` table's columns. ``width``/``height`` are the stored
    picture's; ``upright_size`` is the frame's size after ``rotation``, as decoded frames and
    keypoints have it."""

    fps: float
    frame_count: int
    duration_s: float
    width: int  # as stored (before rotation)
    height: int
    codec: str
    rotation: int  # degrees counter-clockwise applied for upright display (0, 90, 180, 270)

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) of the upright frame."""
        return upright_size(self.width, self.height, self.rotation)


def upright_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """(width, height) after rotating a stored picture by ``rotation`` degrees."""
    return (height, width) if rotation % 180 == 90 else (width, height)


@dataclass(frozen=True)
class FrameBatch:
    """A run of decoded frames, in decode (presentation) order."""

    indices: np.ndarray  # (B,) int64, index of each frame in the full decoded sequence
    times: np.ndarray  # (B,) float64 seconds from the stream start
    frames: np.ndarray  # (B, H, W, 3) uint8 RGB, upright

    def __len__(self) -> int:
        return len(self.indices)


def _open(path: str | os.PathLike[str]) -> av.container.InputContainer:
    p = Path(path)
    if not p.is_file():
        raise VideoDecodeError(f"video file {p} does not exist")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise VideoDecodeError(f"cannot open video {p}: {e}") from e
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{p} has no video stream")
    return container


def stream_rotation(stream: av.video.stream.VideoStream) -> int:
    """Legacy ``rotate`` tag (clockwise degrees) as a counter-clockwise angle in [0, 360)."""
    tag = stream.metadata.get("rotate")
    try:
        return (-int(float(tag))) % 360 if tag else 0
    except ValueError:
        return 0


def frame_rotation(frame: av.VideoFrame, fallback: int) -> int:
    """Counter-clockwise rotation that makes ``frame`` upright, a multiple of 90 in [0, 360)."""
    # frame.rotation reads the display matrix; it is the angle the matrix rotates the stored
    # picture counter-clockwise for display (FFmpeg's av_display_rotation_get convention).
    rot = int(round(frame.rotation / 90.0)) * 90 if frame.rotation else fallback
    return rot % 360


def probe_video(source: str | os.PathLike[str] | IO[bytes], check_end: bool = True) -> VideoInfo:
    """Metadata of the first video stream, from its first decoded frame (the true rotation) and,
    with ``check_end``, its last frames too: decoding both ends catches a truncated upload at
    ingest rather than three stages later. Raises ``VideoDecodeError`` saying why."""
    try:
        src = os.fspath(source) if isinstance(source, os.PathLike) else source
        with av.open(src, mode="r", metadata_errors="ignore") as container:
            if not container.streams.video:
                raise VideoDecodeError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads: ~2x on the VP9 sample
            first = _first_frame(container, stream)
            info = _stream_info(container, stream, first)
            if check_end:
                _check_last_frame(container, stream, info)
            return info
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, EOFError, ValueError) as e:
        raise VideoDecodeError(f"{type(e).__name__}: {e}") from None


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream) -> av.VideoFrame:
    for frame in container.decode(stream):
        return frame
    raise VideoDecodeError("no frame could be decoded")


def _stream_info(container, stream, first: av.VideoFrame) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    frames = int(stream.frames or 0) or int(round(duration * fps))
    if fps <= 0 or frames <= 0:
        raise VideoDecodeError(f"no usable frame rate or length (fps={fps}, frames={frames})")
    # the decoder's rule, so the stored rotation is the one it applies to make frames upright
    rotation = frame_rotation(first, stream_rotation(stream))
    return VideoInfo(
        fps=fps,
        frame_count=frames,
        duration_s=duration or frames / fps,
        width=int(stream.codec_context.width or first.width),
        height=int(stream.codec_context.height or first.height),
        codec=stream.codec_context.name,
        rotation=rotation,
    )


def _check_last_frame(container, stream, info: VideoInfo) -> None:
    """Seek just before the declared end and decode to it; a truncated file has nothing there.

    The seek lands on the keyframe before the target, so only the last GOP is decoded.
    """
    if info.duration_s <= 2.0 / info.fps:
        return
    container.seek(
        int(max(0.0, info.duration_s - 0.5) / stream.time_base), stream=stream, backward=True
    )
    last_t = None
    for frame in container.decode(stream):
        if frame.time is not None:
            last_t = frame.time
    # the last frame starts one frame before the end; allow a little for rounding and VFR
    tolerance = max(3.0 / info.fps, 0.25)
    if last_t is None or last_t < info.duration_s - tolerance:
        got = "nothing" if last_t is None else f"{last_t:.2f} s"
        raise VideoDecodeError(
            f"truncated: declared {info.duration_s:.2f} s but decoding near the end reached {got}"
        )


def _upright(img: np.ndarray, rotation: int) -> np.ndarray:
    # np.rot90 with k > 0 rotates counter-clockwise, the display matrix's direction.
    return np.rot90(img, k=rotation // 90) if rotation else img


def _decode(
    path: str | os.PathLike[str],
    batch_size: int,
    stride: int,
    target_fps: float | None,
    max_frames: int | None,
) -> Iterator[FrameBatch]:
    """Decode in the calling thread; the generator behind :func:`iter_frame_batches`."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads inside FFmpeg
        fallback_rot = stream_rotation(stream)
        next_t = 0.0
        idx: list[int] = []
        times: list[float] = []
        imgs: list[np.ndarray] = []
        i = -1
        kept = 0
        fallback_dt = 1.0 / float(stream.average_rate or 25)
        for i, frame in enumerate(_frames(container, stream, path)):
            t = float(frame.time) if frame.time is not None else i * fallback_dt
            if target_fps is not None:
                if t + 1e-6 < next_t:
                    continue
                next_t = max(next_t + 1.0 / target_fps, t + 0.5 / target_fps)
            elif i % stride:
                continue  # skipped frames are decoded (codecs need them) but never converted
            if max_frames is not None and kept >= max_frames:
                break
            kept += 1
            rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3)
            imgs.append(_upright(rgb, frame_rotation(frame, fallback_rot)))
            idx.append(i)
            times.append(t)
            if len(imgs) == batch_size:
                yield FrameBatch(np.asarray(idx, np.int64), np.asarray(times), np.stack(imgs))
                idx, times, imgs = [], [], []
        if imgs:
            yield FrameBatch(np.asarray(idx, np.int64), np.asarray(times), np.stack(imgs))
        if i < 0:
            raise VideoDecodeError(f"no frame could be decoded from {path}")
    finally:
        container.close()


def _frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: object
) -> Iterator[av.VideoFrame]:
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"decoding {path} failed: {e}") from e


def iter_frame_batches(
    path: str | os.PathLike[str],
    batch_size: int,
    stride: int = 1,
    target_fps: float | None = None,
    threaded: bool = True,
    prefetch: int = 3,
    max_frames: int | None = None,
) -> Iterator[FrameBatch]:
    """Yield upright RGB frame batches of ``path``.

    ``stride`` keeps every stride-th frame; ``target_fps`` instead keeps the first frame at or
    after each multiple of 1/target_fps (never more frames than the video has). The two are
    exclusive. ``max_frames`` stops after that many kept frames. With ``threaded`` the decoding
    runs in a background thread ``prefetch`` batches ahead; memory is bounded by
    ``(prefetch + 2) * batch_size`` frames.
    """
    if batch_size < 1 or stride < 1:
        raise ValueError(f"batch_size and stride must be >= 1, got {batch_size} and {stride}")
    if target_fps is not None and (target_fps <= 0 or stride != 1):
        raise ValueError("target_fps must be > 0 and cannot be combined with stride != 1")
    gen = _decode(path, batch_size, stride, target_fps, max_frames)
    if not threaded:
        yield from gen
        return
    yield from background(gen, prefetch)


_DONE = object()


def background(gen: Iterator[T], maxsize: int) -> Iterator[T]:
    """Run iterator ``gen`` in a daemon thread feeding a bounded queue; re-raise its errors.

    Closing the returned generator early stops the thread at its next item.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=max(1, maxsize))
    stop = threading.Event()

    def work() -> None:
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as e:  # noqa: BLE001 (handed to the consumer thread)
            q.put(e)
        finally:
            close = getattr(gen, "close", None)
            if close is not None and stop.is_set():
                close()

    thread = threading.Thread(target=work, name="video-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
