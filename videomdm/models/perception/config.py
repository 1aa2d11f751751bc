"""What perception extracts and how fast: frozen settings, no model code.

Kept apart from the pipeline (ONNX Runtime, OpenCV, trackers) so that the command line can
offer the valid choices and an extractor id can be named without loading any model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from videomdm.errors import UserError

PoseBackend = Literal["yolo-pose", "vitpose"]
DetectorName = Literal["yolo-pose", "yolox"]
POSE_BACKENDS: tuple[str, ...] = get_args(PoseBackend)
DETECTORS: tuple[str, ...] = get_args(DetectorName)


@dataclass(frozen=True)
class TrackerConfig:
    """ByteTrack settings (names as in ``trackers``); thresholds suit YOLO person scores."""

    lost_track_buffer: int = 30  # frames at 30 fps a lost track is kept for re-association
    track_activation_threshold: float = 0.5  # min score to start a track
    high_conf_det_threshold: float = 0.5  # first-stage association above, second below
    minimum_iou_threshold: float = 0.1
    minimum_consecutive_frames: int = 2


@dataclass(frozen=True)
class VitPoseSettings:
    """Top-down ViTPose: which checkpoint, crop geometry, numerics."""

    model: str = "usyd-community/vitpose-base-simple"  # local folder, or its name in weights dir
    box_padding: float = 1.25
    crops_per_forward: int = 16
    # fp32 by measurement (2-core AVX-512 VM, 8 crops, random weights): ViT-B 329 ms/crop fp32
    # vs 551 with bf16 autocast, tiny config 35 vs 44; bf16 also moved 3% of keypoints > 1 px.
    # ONNX export was not tried (needs the onnx/onnxscript packages). On GPU try "bf16".
    precision: str = "fp32"  # "fp32" | "bf16" (autocast)
    refine: str = "dark"  # "dark" | "quarter" | "none"
    dark_kernel: int = 11
    threads: int = 0  # torch intra-op threads; 0 leaves torch's default
    device: str = "cpu"


DETECTOR_WEIGHTS = {
    "yolo-pose": "yolo11n-pose.onnx",
    "yolox": "yolox_nano_8xb8-300e_humanart-40f6f0d0.onnx",
}


@dataclass(frozen=True)
class PerceptionConfig:
    """Everything that decides what ``run_perception`` extracts and how fast."""

    pose: PoseBackend = "yolo-pose"
    detector: DetectorName = "yolo-pose"  # pose "yolo-pose" needs detector "yolo-pose"
    det_conf: float = 0.25  # person score threshold
    nms_iou: float = 0.7
    imgsz: int = 640  # detector input long side (YOLO-pose; YOLOX is fixed at 416)
    scaleup: bool = True  # YOLO-pose: enlarge videos smaller than imgsz (as Ultralytics does)
    # frames per detector call; 0: 1 on the CPU, 8 on a GPU. On this 2-core CPU two 1-thread
    # sessions on single frames beat batches of 8: 30.6-31.6 vs 22.5-27.8 frames/s (sports2d),
    # 19.8-21.1 vs 18.3-18.5 (dancer): a batch's activations no longer fit the caches the two
    # sessions share, and a 230-frame video spends a batch's latency filling and draining
    # the pipeline (benchmarks/extract.py --batch-size)
    batch_size: int = 0
    stride: int = 1  # keep every stride-th frame ...
    target_fps: float | None = None  # ... or resample to this rate (exclusive with stride)
    max_frames: int | None = None  # stop after this many kept frames (previews, tests)
    device: str = "cpu"  # "cpu" | "cuda[:N]" | "tensorrt[:N]"
    threads: int = 0  # ONNX Runtime intra-op threads per session; 0: cores / sessions
    # two 1-thread sessions on alternate batches: 30.2-31.1 vs 23.2-24.6 frames/s (sports2d) and
    # 21.0-21.4 vs 16.8 (dancer) for one 2-thread session on an idle 2-core machine
    # (benchmarks/extract.py, single frames)
    sessions: int = 2  # detector sessions working on different batches at once
    min_track_len: int = 10  # rows; shorter tracks are dropped
    rows_per_yield: int = 4096
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    vitpose: VitPoseSettings = field(default_factory=VitPoseSettings)

    def __post_init__(self) -> None:
        if self.pose not in POSE_BACKENDS:
            raise UserError(f"unknown pose backend {self.pose!r}; valid: {POSE_BACKENDS}")
        if self.detector not in DETECTORS:
            raise UserError(f"unknown detector {self.detector!r}; valid: {DETECTORS}")
        if self.batch_size < 0:
            raise UserError(f"batch_size must be >= 0 (0: automatic), got {self.batch_size}")
        if self.pose == "yolo-pose" and self.detector != "yolo-pose":
            raise UserError("pose 'yolo-pose' reads keypoints from the 'yolo-pose' detector")
