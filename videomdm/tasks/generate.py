"""Sampling tasks: load a trained VideoMDM, generate motions, reconstruct a clip into the lake."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.errors import UserError
from videomdm.models.evaluation.plausibility import sample_stats
from videomdm.models.mdm.config import GuidanceConfig
from videomdm.models.mdm.pipeline import Reconstruction, VideoMDM
from videomdm.models.motion.cameras import Intrinsics, to_pixels
from videomdm.models.motion.sample import MotionSample
from videomdm.models.viz.animation import animate_motions
from videomdm.models.viz.lift_animation import animate_lift
from videomdm.models.viz.player import Motion, write_player
from videomdm.models.viz.reconstruction_video import (
    PinholeView,
    clip_frames,
    write_reconstruction_video,
)
from videomdm.storage import Lake
from videomdm.storage.catalog import (
    RECONSTRUCT_ID,
    clip_with_motion,
    reconstructed_rows,
    video_uri_and_fps,
)
from videomdm.storage.checkpoints import open_checkpoint
from videomdm.storage.codecs import clip_keypoints, flat, motion_camera, motion_row
from videomdm.storage.lake import rows_to_table, utcnow
from videomdm.storage.markers import DONE, set_marker
from videomdm.storage.runs import LIFTER, TRAIN, Run, get_run, latest_run, lifter_id
from videomdm.storage.sources import local_path
from videomdm.tasks.retry import transient_only

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratedMotion:
    """One generated motion and where it was written."""

    generation_id: str
    npy: str  # (T, 17, 3) float32, metres
    animation: str  # gif


@dataclass(frozen=True)
class ClipToReconstruct:
    sample: MotionSample  # the lifted motion, its keypoints, camera and caption
    clip: dict[str, Any]  # the clips row


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def load_model(lake: Lake, model: str | None = None, device: str = "cpu") -> VideoMDM:
    """The newest finished training run's model, or ``model``: a run id, or a checkpoint file
    (read with ``weights_only=True``, so an untrusted file cannot run code)."""
    if model and Path(model).is_file():
        return VideoMDM.from_checkpoint(model, device)
    run = _train_run(lake, model)
    assert run.checkpoint_uri is not None
    with open_checkpoint(run.checkpoint_uri) as path:
        return VideoMDM.from_checkpoint(path, device, name=run.run_id)


def _train_run(lake: Lake, run_id: str | None) -> Run:
    if run_id is None:
        run = latest_run(lake, TRAIN)
        if run is None:
            raise UserError("no trained VideoMDM in the lake; run `videomdm train` first")
        return run
    run = get_run(lake, run_id, TRAIN)
    if run is None:
        raise UserError(f"--model {run_id!r} is neither a checkpoint file nor a training run id")
    return run


@task(cache_policy=NO_CACHE, tags=["gpu"])
def generate_motions(
    m: VideoMDM, text: str, n: int, seconds: float, steps: int, guidance_scale: float, seed: int
) -> np.ndarray:
    """``n`` motions ``(n, T, 17, 3)`` for ``text``."""
    return m.generate(text, n, seconds, steps, guidance_scale, seed)


@task(cache_policy=NO_CACHE)
def save_generations(
    lake: Lake,
    m: VideoMDM,
    text: str,
    joints: np.ndarray,
    out: str,
    seed: int,
    guidance_scale: float,
) -> list[GeneratedMotion]:
    """Per motion a ``.npy`` and a gif in ``out``, and a ``generations`` row."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, saved = [], []
    for i, j in enumerate(joints):
        key = f"{m.name}|{text}|{seed}|{i}|{len(j)}"
        gid = hashlib.sha256(key.encode()).hexdigest()[:16]
        stem = out_dir / f"{_slug(text)}_{seed}_{i}"
        npy = stem.with_suffix(".npy").resolve()
        np.save(npy, j.astype(np.float32))
        gif = animate_motions(stem.with_suffix(".gif"), [j], [text[:30]], m.fps).resolve()
        saved.append(GeneratedMotion(gid, str(npy), str(gif)))
        rows.append(
            dict(
                generation_id=gid,
                run_id=m.name,
                text=text,
                seed=seed,
                sample_index=i,
                n_frames=len(j),
                fps=m.fps,
                guidance_scale=guidance_scale,
                joints=flat(j),
                npy_uri=str(npy),
                animation_uri=str(gif),
                created_at=utcnow(),
            )
        )
    lake.merge("generations", rows_to_table("generations", rows), "generate", {"run_id": m.name})
    return saved


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "motion"


@task(cache_policy=NO_CACHE)
def describe_samples(joints: np.ndarray, fps: float) -> dict[str, float]:
    """Do the samples move, are their bodies rigid, do seeds differ (``sample_stats``)."""
    return sample_stats(list(joints), fps)


@task(cache_policy=NO_CACHE)
def play_generations(text: str, joints: np.ndarray, fps: float, out: str, seed: int) -> str:
    """One HTML player with every sample of the prompt side by side."""
    path = Path(out) / f"{_slug(text)}_{seed}.html"
    motions = [Motion(f"sample {i}", j, fps) for i, j in enumerate(joints)]
    return str(write_player(path, motions, title=f'"{text}"').resolve())


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def load_clip(lake: Lake, clip_id: str) -> ClipToReconstruct:
    """A clip with its keypoints and the current lifter's motion and camera."""
    run = latest_run(lake, LIFTER)
    clip, motion = clip_with_motion(lake, clip_id, lifter_id(run) if run else None)
    joints, R, t = motion_camera(motion)  # noqa: N806
    u, conf = clip_keypoints(clip)
    text = clip["caption"] or ""
    return ClipToReconstruct(MotionSample(joints, u, conf, R, t, text, clip["fps"], clip_id), clip)


@task(cache_policy=NO_CACHE, tags=["gpu"])
def reconstruct_clip(
    m: VideoMDM, sample: MotionSample, guidance: GuidanceConfig, seed: int
) -> Reconstruction:
    """The clip's 3D motion, guided by its keypoints."""
    return m.reconstruct(sample, guidance, seed)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def save_reconstruction(
    lake: Lake, clip: dict[str, Any], rec: Reconstruction, run_id: str, flow_run_id: str | None
) -> None:
    """Replace the clip's ``videomdm`` motion row; the video's marker counts its rows. The row
    keeps the model's gauge: joints and ``cam_t`` scaled together, keypoints unchanged."""
    clip_id, video_id = clip["clip_id"], clip["video_id"]
    row = motion_row(clip, RECONSTRUCT_ID, rec.joints, rec.R, rec.t)
    lake.delete(
        "motions", f"clip_id = '{clip_id}' and lifter_id = '{RECONSTRUCT_ID}'", "reconstruct"
    )
    meta = {"flow_run_id": flow_run_id, "clip_id": clip_id, "run_id": run_id}
    version = lake.append("motions", rows_to_table("motions", [row]), "reconstruct", meta)
    set_marker(
        lake,
        "motions",
        video_id,
        RECONSTRUCT_ID,
        DONE,
        rows=reconstructed_rows(lake, video_id),
        data_version=version,
        flow_run_id=flow_run_id,
    )


@dataclass(frozen=True)
class ReconstructionPictures:
    animation: str  # gif: keypoints, VideoMDM and the lifter from the camera
    video: str | None  # mp4: the clip with keypoints beside the 3D motion (camera, side)
    player: str  # HTML: VideoMDM and the lifter in 3D


@task(cache_policy=NO_CACHE)
def draw_reconstruction(
    lake: Lake, out: str, clip: ClipToReconstruct, rec: Reconstruction
) -> ReconstructionPictures:
    """A gif (keypoints, VideoMDM's motion and the lifter's, seen from the camera), an mp4 of
    the clip beside the 3D motion, and the HTML player of both motions."""
    sample, stem = clip.sample, Path(out) / f"reconstruct_{clip.sample.clip_id}"
    lifted = (np.asarray(sample.joints, np.float64) @ sample.R.T) + sample.t
    gif = animate_lift(
        stem.with_suffix(".gif"),
        sample.u,
        sample.conf,
        rec.camera_frame(),
        lifted,
        title=f"clip {sample.clip_id}",
        labels=("VideoMDM", "lifter"),
    )
    motions = [
        Motion("VideoMDM", rec.joints, sample.fps),
        Motion("lifter", sample.joints, sample.fps),
    ]
    player = write_player(stem.with_suffix(".html"), motions, title=f"clip {sample.clip_id}")
    return ReconstructionPictures(str(gif), _clip_video(lake, clip, rec, stem), str(player))


def _clip_video(lake: Lake, clip: ClipToReconstruct, rec: Reconstruction, stem: Path) -> str | None:
    """The mp4 of ``write_reconstruction_video``; None (logged) when the video cannot be read."""
    row, sample = clip.clip, clip.sample
    fx, fy, cx, cy, w, h = (float(v) for v in row["intrinsics"])
    camera = PinholeView(rec.R, rec.t, fx, fy, cx, cy, int(w), int(h))
    uri, video_fps = video_uri_and_fps(lake, row["video_id"])
    try:
        with local_path(uri) as path:
            frames = clip_frames(path, row["frame_start"], video_fps, sample.fps, len(rec.joints))
            px = to_pixels(
                np.asarray(sample.u, np.float64), Intrinsics(fx, fy, cx, cy, int(w), int(h))
            )
            mp4 = write_reconstruction_video(
                stem.with_suffix(".mp4"), frames, px, sample.conf, rec.joints, camera, sample.fps
            )
    except (OSError, av.error.FFmpegError) as e:
        log.warning("no reconstruction video for clip %s: %s: %s", sample.clip_id, uri, e)
        return None
    return str(mp4)
