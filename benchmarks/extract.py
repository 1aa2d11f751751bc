"""End-to-end extraction throughput: decode + detect + pose + track, frames per second.

    python benchmarks/extract.py [--assets ../shared/assets] [--max-frames N] [--layouts 1x2,2x1]

Prints one row per (video, pose backend, session layout): frames/s over the wall clock, the
share of time per stage (decode and detection run in worker threads, so shares are of summed
busy time, not of wall time), detections kept per frame and mean keypoint confidence. The
``vitpose`` rows use a tiny randomly initialised ViTPose (no real weights here) and measure the
plumbing (crops, batching, heatmap decoding), not ViTPose-B speed or accuracy.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _samples import SAMPLE_VIDEOS, default_assets
from rich.console import Console
from rich.table import Table

from videomdm.models.perception.config import PerceptionConfig
from videomdm.models.perception.detection import make_session
from videomdm.models.perception.letterbox import letterbox_geometry
from videomdm.models.perception.pipeline import (
    PersonFrames,
    StageTimes,
    frame_budget,
    run_perception,
)
from videomdm.models.perception.video import probe_video

log = logging.getLogger("benchmarks.extract")

STAGES = ("decode", "detect.letterbox", "detect.forward", "detect.postprocess", "pose", "track")


def tiny_vitpose():  # noqa: ANN201 (torch is imported lazily)
    import torch
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    from videomdm.models.perception.pose2d import VitPoseEstimator

    torch.manual_seed(0)
    backbone = VitPoseBackboneConfig(  # type: ignore[call-arg]
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2, out_indices=[1]
    )
    config = VitPoseConfig(backbone_config=backbone, num_labels=17)  # type: ignore[call-arg]
    return VitPoseEstimator(model=VitPoseForPoseEstimation(config))


def forward_bound(
    weights: str, input_hw: tuple[int, int], sessions: int, threads: int, batch: int
) -> float:
    """Frames/s of the YOLO forward pass alone at input size ``input_hw``, in the pipeline's
    layout: ``sessions`` sessions of ``threads`` threads, each in its own thread on ``batch``
    frames at a time (ONNX Runtime releases the GIL)."""
    sess = [
        make_session(Path(weights) / "yolo11n-pose.onnx", "cpu", threads) for _ in range(sessions)
    ]
    x = np.random.default_rng(0).random((batch, 3, *input_hw), np.float32)
    calls = max(2, 24 // batch)

    def work(s: ort.InferenceSession) -> None:
        for _ in range(calls):
            s.run(None, {"images": x})

    for s in sess:
        s.run(None, {"images": x})
    t = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(work, sess))
    return sessions * calls * batch / (time.perf_counter() - t)


def run_one(video: Path, cfg: PerceptionConfig, weights: str, tiny: bool) -> dict[str, object]:
    stats = StageTimes()
    pose = tiny_vitpose() if tiny else None
    rows = PersonFrames.concat(
        list(run_perception(video, cfg, weights, pose_estimator=pose, stats=stats))
    )
    busy = sum(stats.seconds.get(s, 0.0) for s in STAGES)
    return {
        "fps": stats.frames / stats.wall_s,
        "frames": stats.frames,
        "shares": {s: stats.seconds.get(s, 0.0) / busy for s in STAGES},
        "dets": len(rows) / max(stats.frames, 1),
        "kconf": float(rows.kp[..., 2].mean()) if len(rows) else float("nan"),
        "tracks": len(np.unique(rows.track_id)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", default=default_assets())
    ap.add_argument("--videos", default=",".join(SAMPLE_VIDEOS), help="comma separated")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--vitpose-frames", type=int, default=120, help="0 skips the vitpose rows")
    ap.add_argument("--layouts", default="1x2,2x1", help="sessions x threads, comma separated")
    ap.add_argument("--batch-size", type=int, default=0, help="frames per call; 0: automatic")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    weights = str(Path(args.assets) / "weights")
    videos = [Path(args.assets) / "videos" / v for v in args.videos.split(",")]

    table = Table(title=f"extraction throughput ({os.cpu_count()} CPUs)")
    for col in (
        "video",
        "pose",
        "sess x thr",
        "frames",
        "frames/s",
        "fwd-only/s",
        *STAGES,
        "dets/frame",
        "kp conf",
        "tracks",
    ):
        table.add_column(col, justify="right" if col not in ("video", "pose") else "left")
    for video in videos:
        width, height = probe_video(video, check_end=False).upright_size
        lb = letterbox_geometry(height, width, 640)
        for layout in args.layouts.split(","):
            s, t = (int(v) for v in layout.split("x"))
            layout_cfg = PerceptionConfig(sessions=s, threads=t, batch_size=args.batch_size)
            batch, _ = frame_budget(width, height, layout_cfg)
            bound = forward_bound(weights, (lb.out_h, lb.out_w), s, t, batch)
            runs = [
                ("yolo-pose", "yolo-pose", args.max_frames, False),
                ("vitpose (tiny random)", "yolo-pose", args.vitpose_frames, True),
            ]
            for label, det, frames, tiny in runs[: 2 if args.vitpose_frames else 1]:
                cfg = PerceptionConfig(
                    pose="vitpose" if tiny else "yolo-pose",
                    detector=det,
                    sessions=s,
                    threads=t,
                    max_frames=frames,
                    batch_size=args.batch_size,
                )
                r = run_one(video, cfg, weights, tiny)
                shares = r["shares"]
                assert isinstance(shares, dict)
                table.add_row(
                    video.name,
                    label,
                    layout,
                    str(r["frames"]),
                    f"{r['fps']:.1f}",
                    f"{bound:.1f}" if not tiny else "",
                    *(f"{100 * shares[st]:.0f}%" for st in STAGES),
                    f"{r['dets']:.2f}",
                    f"{r['kconf']:.3f}",
                    str(r["tracks"]),
                )
    console = Console(width=220)
    console.print(table)
    console.print(
        "fwd-only/s: YOLO forward alone at the video's input size, in the row's layout and "
        "batch size; stage shares are of summed busy time."
    )


if __name__ == "__main__":
    main()
