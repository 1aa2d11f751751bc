"""Sampling tasks: load a trained VideoMDM, generate motions, reconstruct a clip into the lake."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from videomdm.models.mdm.data import body_size_gauge
from videomdm.models.mdm.denoiser import Denoiser
from videomdm.models.mdm.sampling import GuidanceConfig, generate, reconstruct
from videomdm.models.mdm.schedulers import DiffusionConfig
from videomdm.models.mdm.text_encoder import TextEncoder
from videomdm.models.mdm.trainer import load_for_sampling, uses_size_gauge
from videomdm.models.motion.cameras import world_to_camera
from videomdm.models.motion.features import Normalizer
from videomdm.models.viz.animation import animate_motions
from videomdm.storage import Lake, run_sql
from videomdm.storage.lake import rows_to_table, utcnow
from videomdm.storage.markers import DONE, set_marker
from videomdm.tasks.motion import latest_run, lifter_id_of
from videomdm.tasks.train import KIND, NO_CAPTION, load_checkpoint, train_run

log = logging.getLogger(__name__)

RECONSTRUCT_ID = "videomdm"  # the lifter_id of reconstructed motions


@dataclass
class Loaded:
    run_id: str
    model: Denoiser
    norm: Normalizer
    diffusion: DiffusionConfig
    window: int
    fps: float
    size_gauge: bool  # reconstruct in the body-size gauge (``mdm_data.body_size_gauge``)


def load_model(lake_root: str, model: str | None = None, device: str = "cpu") -> Loaded:
    """The newest finished training run's EMA model, or ``model``: a run id, or a checkpoint
    file (read with ``weights_only=True``, so an untrusted file cannot run code)."""
    if model and Path(model).is_file():
        state, run_id = load_checkpoint(model), Path(model).stem
    else:
        run = _train_run(lake_root, model)
        state, run_id = load_checkpoint(run["checkpoint_uri"]), run["run_id"]
    net, norm, diffusion = load_for_sampling(state, device)
    window = int(state["train_config"]["window"])
    return Loaded(run_id, net, norm, diffusion, window, 30.0, uses_size_gauge(state))


def _train_run(lake_root: str, run_id: str | None) -> dict[str, Any]:
    if run_id is None:
        run = latest_run(lake_root, KIND)
        if run is None:
            raise ValueError("no trained VideoMDM in the lake; run `videomdm train` first")
        return run
    run = train_run(lake_root, run_id)
    if run is None:
        raise ValueError(f"--model {run_id!r} is neither a checkpoint file nor a training run id")
    return run


def _cond(m: Loaded, texts: list[str]) -> torch.Tensor | None:
    if m.model.cfg.cond_mode != "text":
        return None
    device = next(m.model.parameters()).device
    return torch.from_numpy(TextEncoder(str(device)).encode(texts)).to(device)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "motion"


@task(cache_policy=NO_CACHE, tags=["gpu"])
def generate_task(
    lake_root: str,
    m: Loaded,
    text: str,
    n: int,
    seconds: float,
    out: str,
    seed: int,
    guidance_scale: float,
    steps: int,
) -> list[dict[str, Any]]:
    """Sample ``n`` motions for ``text``; write .npy and a gif each, and ``generations`` rows."""
    frames = max(2, round(seconds * m.fps))
    cond = _cond(m, [text] * n)
    joints = generate(m.model, m.norm, m.diffusion, cond, n, frames, steps, guidance_scale, seed)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, j in enumerate(joints):
        gid = hashlib.sha256(f"{m.run_id}|{text}|{seed}|{i}|{frames}".encode()).hexdigest()[:16]
        stem = out_dir / f"{_slug(text)}_{seed}_{i}"
        np.save(stem.with_suffix(".npy"), j.astype(np.float32))
        gif = animate_motions(stem.with_suffix(".gif"), [j], [text[:30]], m.fps)
        rows.append(
            dict(
                generation_id=gid,
                run_id=m.run_id,
                text=text,
                seed=seed,
                sample_index=i,
                n_frames=frames,
                fps=m.fps,
                guidance_scale=guidance_scale,
                joints=j.reshape(-1).tolist(),
                npy_uri=str(stem.with_suffix(".npy").resolve()),
                animation_uri=str(gif.resolve()),
                created_at=utcnow(),
            )
        )
    Lake(lake_root).merge(
        "generations", rows_to_table("generations", rows), "generate", {"run_id": m.run_id}
    )
    return rows


@task(cache_policy=NO_CACHE, tags=["gpu"])
def reconstruct_task(
    lake_root: str,
    m: Loaded,
    clip_id: str,
    guidance: GuidanceConfig,
    seed: int,
    flow_run_id: str | None,
) -> dict[str, Any]:
    """Reconstruct one clip guided by its keypoints and camera; replaces its ``videomdm``
    motion row (the clip's video's marker counts the rows)."""
    lake = Lake(lake_root)
    clip, motion = _clip_and_motion(lake_root, clip_id)
    n = clip["n_frames"]
    u = np.asarray(clip["u"], np.float32).reshape(n, 17, 2)
    conf = np.asarray(clip["conf"], np.float32).reshape(n, 17)
    R = np.asarray(motion["cam_R"], np.float64).reshape(3, 3)  # noqa: N806
    t = np.asarray(motion["cam_t"], np.float64)
    init = np.asarray(motion["joints"], np.float32).reshape(n, 17, 3)
    if m.size_gauge:  # the row keeps the gauge: joints and cam_t both scaled, 2D unchanged
        init, t = body_size_gauge(init, t)
    cond = _cond(m, [clip["caption"] or NO_CAPTION])
    joints = reconstruct(
        m.model,
        m.norm,
        m.diffusion,
        init,
        u,
        conf,
        R,
        t,
        None if cond is None else cond[0],
        m.window,
        guidance,
        seed,
        clip["fps"],
    )
    row = dict(
        clip_id=clip_id,
        lifter_id=RECONSTRUCT_ID,
        video_id=clip["video_id"],
        n_frames=n,
        fps=clip["fps"],
        joints=joints.reshape(-1).tolist(),
        cam_R=R.reshape(-1).tolist(),
        cam_t=t.tolist(),
        intrinsics=list(motion["intrinsics"]),
        created_at=utcnow(),
    )
    lake.delete(
        "motions", f"clip_id = '{clip_id}' and lifter_id = '{RECONSTRUCT_ID}'", "reconstruct"
    )
    lake.append(
        "motions",
        rows_to_table("motions", [row]),
        "reconstruct",
        {"flow_run_id": flow_run_id, "clip_id": clip_id, "run_id": m.run_id},
    )
    count = (
        run_sql(
            lake,
            "select count(*) as n from motions where video_id = ? and lifter_id = ?",
            params=[clip["video_id"], RECONSTRUCT_ID],
        )
        .column("n")[0]
        .as_py()
    )
    set_marker(
        lake,
        "motions",
        clip["video_id"],
        RECONSTRUCT_ID,
        DONE,
        rows=count,
        data_version=lake.version("motions"),
        flow_run_id=flow_run_id,
    )

    # what the picture needs: both motions in the camera frame, beside the keypoints
    joints_cam, init_cam = (world_to_camera(w.astype(np.float64), R, t) for w in (joints, init))
    return {"clip_id": clip_id, "u": u, "conf": conf, "joints_cam": joints_cam,
            "init_cam": init_cam}  # fmt: skip


def _clip_and_motion(lake_root: str, clip_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not re.fullmatch(r"[0-9a-f]{1,64}", clip_id):
        raise ValueError(
            f'clip id {clip_id!r} is not a hex id (see `videomdm sql "select clip_id from clips"`)'
        )
    lake = Lake(lake_root)
    clips = run_sql(lake, "select * from clips where clip_id = ?", params=[clip_id]).to_pylist()
    if not clips:
        raise ValueError(f"no clip {clip_id!r} in the lake")
    run = latest_run(lake_root, "train-lifter")
    motions = run_sql(
        lake,
        "select * from motions where clip_id = ? and lifter_id != ? "
        "order by lifter_id = ? desc, created_at desc",
        params=[clip_id, RECONSTRUCT_ID, lifter_id_of(run) if run else ""],
    ).to_pylist()
    if not motions:
        raise ValueError(f"clip {clip_id} has no lifted motion (its camera); run `videomdm lift`")
    return clips[0], motions[0]
