"""Pictures of extracted keypoints: an overlay video or a contact sheet of a video's frames,
its keypoints read from the lake and drawn by ``models.viz.overlay``."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.models.viz import overlay
from videomdm.storage import Lake
from videomdm.storage.catalog import latest_extractor, people_by_frame, video_uri
from videomdm.storage.datasets import extracted_videos
from videomdm.storage.sources import local_path

log = logging.getLogger(__name__)


def render_overlay(
    lake: Lake,
    video_id: str,
    out: Path,
    extractor: str | None = None,
    max_frames: int | None = None,
) -> Path:
    """An H.264 mp4 of the video with boxes, track ids and skeletons drawn on."""
    people = people_by_frame(lake, video_id, extractor or latest_extractor(lake, video_id))
    with local_path(video_uri(lake, video_id)) as path:
        return overlay.render_overlay(path, people, out, max_frames)


def render_sheet(
    lake: Lake, video_id: str, out: Path, extractor: str | None = None, n: int = 8, cols: int = 4
) -> Path:
    """A PNG contact sheet of ``n`` frames spread over the video, drawn over."""
    people = people_by_frame(lake, video_id, extractor or latest_extractor(lake, video_id))
    with local_path(video_uri(lake, video_id)) as path:
        return overlay.render_sheet(path, people, out, n, cols)


@task(cache_policy=NO_CACHE)
def overlay_sheets(
    lake: Lake, release: str, collection: str, out_dir: str, limit: int = 12
) -> list[tuple[str, str]]:
    """A contact sheet of keypoints drawn over each extracted video: (filename, png path)."""
    videos = extracted_videos(lake, release, collection)
    if len(videos) > limit:
        log.info("drawing %d of %d videos (limit %d)", limit, len(videos), limit)
    out = []
    for v in videos[:limit]:
        path = Path(out_dir) / f"overlay_{v.video_id}.png"
        render_sheet(lake, v.video_id, path, v.extractor)
        out.append((v.filename, str(path)))
    return out
