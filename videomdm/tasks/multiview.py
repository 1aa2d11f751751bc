"""Multi-view yardstick tasks: the calibration, the views' keypoints from the lake, the scene,
the lifter or VideoMDM on one view, the picture and the report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.errors import UserError
from videomdm.models.evaluation.multiview import MultiviewConfig, Scene, Truth, build_scene
from videomdm.models.evaluation.multiview_lift import ViewClip, ViewEvaluation, evaluate_view
from videomdm.models.evaluation.noise import measure_detector
from videomdm.models.lifter.network import Lifter, load_checkpoint
from videomdm.models.mdm.config import GuidanceConfig
from videomdm.models.mdm.pipeline import VideoMDM
from videomdm.models.motion.calibration import CameraModel, load_calibration
from videomdm.models.motion.clips import ClipConfig
from videomdm.models.motion.multiview import ViewTracks
from videomdm.models.perception.video import iter_frame_batches, upright_size
from videomdm.models.viz.multiview import draw_view, frames_wanted
from videomdm.progress import progress_bar
from videomdm.storage import Lake
from videomdm.storage.catalog import latest_extractor, track_keypoints
from videomdm.storage.checkpoints import open_checkpoint
from videomdm.storage.runs import LIFTER, get_run, latest_run, lifter_id
from videomdm.storage.sources import list_videos

log = logging.getLogger(__name__)

CALIBRATION_PATTERNS = ("*.qca.txt", "calib*.toml", "Calib*.toml", "calib*.json", "Calib*.json")


@task(cache_policy=NO_CACHE)
def find_calibration(directory: str) -> str:
    """The one calibration file in ``directory`` or its ``calibration/`` folder (a Pose2Sim
    project's layout: ``videos/``, ``calibration/Calib.qca.txt``)."""
    if not Path(directory).is_dir():
        raise UserError(f"{directory}: no such folder")
    found = sorted(
        {
            p
            for folder in (Path(directory), Path(directory) / "calibration")
            for pat in CALIBRATION_PATTERNS
            for p in folder.glob(pat)
        }
    )
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise UserError(
            f"{directory}: {what} calibration files ({', '.join(CALIBRATION_PATTERNS)}); "
            "name one with --calibration"
        )
    return str(found[0])


@task(cache_policy=NO_CACHE)
def read_calibration(calibration: str) -> dict[str, CameraModel]:
    """The cameras of a calibration file, by name; three or more, each with extrinsics."""
    cameras = load_calibration(calibration)
    if len(cameras) < 3:
        raise UserError(f"{calibration}: {len(cameras)} cameras; the yardstick needs 3 or more")
    posed = [c for c in cameras.values() if not c.has_pose]
    if posed:
        raise UserError(f"{calibration}: camera {posed[0].name} has no rotation / translation")
    return cameras


@task(cache_policy=NO_CACHE)
def check_views(directory: str, cameras: dict[str, CameraModel], calibration: str) -> list[str]:
    """The folder's videos, one per calibrated camera (named like it: ``cam01.mp4``); one
    clear error for a camera without a video or a video without a camera."""
    videos = {Path(f.uri).name.split(".")[0]: f.uri for f in list_videos(directory)}
    for stem, uri in videos.items():
        if stem not in cameras:
            raise UserError(f"{uri}: no camera {stem!r} in {calibration}")
    for name in cameras:
        if name not in videos:
            raise UserError(f"{calibration}: camera {name} has no video {name}.* in {directory}")
    return sorted(videos.values())


@task(cache_policy=NO_CACHE)
def load_views(
    lake: Lake, collection: str, cameras: dict[str, CameraModel], calibration: str
) -> list[ViewTracks]:
    """Each calibrated camera's video of ``collection`` (by file name) with its extracted
    keypoints."""
    videos = [v for v in lake.read("videos").to_pylist() if v["collection"] == collection]
    by_camera: dict[str, dict[str, Any]] = {}
    for v in sorted(videos, key=lambda v: v["filename"]):
        if v["status"] != "ok":
            raise UserError(f"{v['uri']}: {v['error']}")
        stem = Path(v["filename"]).name.split(".")[0]
        if stem not in cameras:
            raise UserError(f"{v['uri']}: no camera {stem!r} in {calibration}")
        by_camera[stem] = v
    views = []
    for name, cam in cameras.items():
        if name not in by_camera:
            raise UserError(f"{calibration}: camera {name} has no video {name}.* beside it")
        v = by_camera[name]
        tracks, frames, kp = track_keypoints(
            lake, v["video_id"], latest_extractor(lake, v["video_id"])
        )
        check_video_size(v, cam)
        views.append(
            ViewTracks.from_rows(name, cam, v["fps"], v["frame_count"], tracks, frames, kp)
        )
    return views


def check_video_size(video: dict[str, Any], cam: CameraModel) -> None:
    """The video's upright size must be the calibrated one; a few pixels less on a side (up to
    one 16-pixel macroblock) is a codec's cropping of its padded coded size (1080 shown of 1088
    coded), so the pixels keep the calibration's coordinates and it is only logged."""
    w, h = upright_size(video["width"], video["height"], video["rotation"] or 0)
    k = cam.intrinsics
    if (w, h) == (k.width, k.height):
        return
    if 0 <= k.width - w < 16 and 0 <= k.height - h < 16:
        log.info("%s: %dx%d, calibrated %dx%d (codec crop)", video["uri"], w, h, k.width, k.height)
        return
    raise UserError(f"{video['uri']}: {w}x{h}, calibrated for {k.width}x{k.height}")


@task(cache_policy=NO_CACHE)
def make_scene(views: list[ViewTracks], cfg: MultiviewConfig) -> Scene:
    """People matched across views and the views' frame offsets."""
    return build_scene(views, cfg)


@task(cache_policy=NO_CACHE)
def choose_lifter(lake: Lake, lifter: str | None) -> tuple[Lifter, str]:
    """The newest lifter, or ``lifter``: a lifter run id or a checkpoint file; and its id."""
    if lifter is not None and Path(lifter).is_file():
        return load_checkpoint(lifter)[0], Path(lifter).stem
    run = latest_run(lake, LIFTER) if lifter is None else get_run(lake, lifter, LIFTER)
    if run is None:
        raise UserError(
            "no trained lifter in the lake; run `videomdm train-lifter --mocap DIR`"
            if lifter is None
            else f"--lifter {lifter!r} is neither a checkpoint file nor a lifter run id"
        )
    assert run.checkpoint_uri is not None
    with open_checkpoint(run.checkpoint_uri) as path:
        return load_checkpoint(path)[0], lifter_id(run)


@task(cache_policy=NO_CACHE)
def lift_one_view(
    scene: Scene,
    view: str,
    lifter: Lifter,
    calibrated: bool,
    clip_cfg: ClipConfig,
    cfg: MultiviewConfig,
) -> ViewEvaluation:
    """The view's people: truth from the other views, clips lifted."""
    return evaluate_view(scene, scene.view_index(view), lifter, calibrated, clip_cfg, cfg)


@task(cache_policy=NO_CACHE, tags=["gpu"])
def reconstruct_view(
    model: VideoMDM, clips: list[ViewClip], guidance: GuidanceConfig, seed: int
) -> list[np.ndarray]:
    """VideoMDM's reconstruction of each clip, camera frame ``(T, 17, 3)``."""
    out = []
    with progress_bar("reconstruct", total=len(clips)) as advance:
        for clip in clips:
            out.append(model.reconstruct(clip.sample(), guidance, seed).camera_frame())
            advance(1)
    return out


@task(cache_policy=NO_CACHE)
def draw_view_picture(
    scene: Scene,
    evaluation: ViewEvaluation,
    preds: dict[str, list[np.ndarray]],
    video_uri: str,
    out: str,
) -> str:
    """``<out>/multiview_<view>.png``: the frame, the truth and each method side by side."""
    wanted = set(frames_wanted(scene, evaluation))
    images: dict[int, np.ndarray] = {}
    for batch in iter_frame_batches(video_uri, 16, max_frames=max(wanted, default=0) + 1):
        for i, img in zip(batch.indices, batch.frames, strict=True):
            if int(i) in wanted:
                images[int(i)] = img
    path = Path(out) / f"multiview_{evaluation.view}.png"
    return str(draw_view(scene, evaluation, preds, images, path))


@task(cache_policy=NO_CACHE)
def detector_noise(scene: Scene, truths: list[Truth]) -> dict[str, object]:
    """The real detector's errors against the truth, and the noise model fitted to them."""
    return measure_detector(scene, truths).to_dict() if truths else {}


@task(cache_policy=NO_CACHE)
def write_report(report: dict[str, Any], out: str) -> str:
    """``<out>/multiview.json``."""
    path = Path(out) / "multiview.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=_plain))
    return str(path)


def _plain(x: object) -> object:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")
