"""Person detection with ONNX Runtime: YOLO11-pose (boxes + 17 keypoints) or YOLOX-nano (boxes).

Both detectors take RGB uint8 frames ``(B, H, W, 3)`` and return one :class:`Detections` per
frame in original image pixels. Each detector owns a pool of ``sessions`` ONNX Runtime sessions
with ``threads`` intra-op threads each, and one worker thread per session; :meth:`submit`
returns a future so callers keep batches in flight while they pose and track earlier ones.
Which layout is fastest depends on the machine: on the 2-core dev VM one 2-thread session ran
the YOLO11n-pose forward at 31 frames/s (384x640, batch 8) against 20 for two concurrent
1-thread sessions, and degraded less when other processes competed; elsewhere two 1-thread
sessions were measured ~20% faster. ``benchmarks/extract.py`` prints both.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort

from videomdm.errors import UserError
from videomdm.models.perception.letterbox import (
    Letterbox,
    letterbox_batch,
    letterbox_geometry,
)
from videomdm.models.perception.weights import WeightsSource, resolve_weights

log = logging.getLogger(__name__)

N_KPT = 17


@dataclass(frozen=True)
class Detections:
    """People found in one frame, in original image pixels."""

    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    scores: np.ndarray  # (N,) float32
    keypoints: np.ndarray | None = None  # (N, 17, 3) float32 x, y, score (YOLO-pose only)

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> Detections:
        kp = None if self.keypoints is None else self.keypoints[keep]
        return Detections(self.boxes[keep], self.scores[keep], kp)


def empty_detections(with_keypoints: bool) -> Detections:
    kp = np.zeros((0, N_KPT, 3), np.float32) if with_keypoints else None
    return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), kp)


# ---------------------------------------------------------------- NMS


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box pair: (N, 4), (M, 4) xyxy -> (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float, max_det: int = 300) -> np.ndarray:
    """Greedy NMS; returns kept indices, best score first.

    Vectorised numpy rather than cv2.dnn.NMSBoxes: after the score threshold only tens of
    candidates remain, so one (K, K) IoU matrix and a greedy pass over it cost a few
    microseconds, results are exact in float64 with xyxy boxes (NMSBoxes wants xywh lists and
    rounds through float32 Rect2d), and it does not depend on the dnn module's layout, which
    moved between OpenCV 4 and 5.
    """
    order = np.argsort(-scores, kind="stable")
    iou = box_iou(boxes[order].astype(np.float64), boxes[order].astype(np.float64))
    suppressed = np.zeros(len(order), bool)
    keep: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i])
        if len(keep) >= max_det:
            break
        suppressed |= iou[i] > iou_thr
    return np.asarray(keep, np.int64)


# ---------------------------------------------------------------- sessions


def providers_for(device: str) -> list[str | tuple[str, dict[str, str]]]:
    """ONNX Runtime providers for "cpu", "cuda[:N]" or "tensorrt[:N]", with CPU as fallback."""
    m = re.fullmatch(r"(cpu|cuda|tensorrt)(?::(\d+))?", device)
    if not m:
        raise UserError(f"unknown device {device!r}; valid: 'cpu', 'cuda[:N]', 'tensorrt[:N]'")
    kind, dev_id = m.group(1), {"device_id": m.group(2) or "0"}
    chains: dict[str, list[str | tuple[str, dict[str, str]]]] = {
        "cpu": ["CPUExecutionProvider"],
        "cuda": [("CUDAExecutionProvider", dev_id), "CPUExecutionProvider"],
        "tensorrt": [
            ("TensorrtExecutionProvider", dev_id),
            ("CUDAExecutionProvider", dev_id),
            "CPUExecutionProvider",
        ],
    }
    chain = chains[kind]
    have = set(ort.get_available_providers())
    wanted = chain[0][0] if isinstance(chain[0], tuple) else chain[0]
    if wanted not in have:
        raise UserError(
            f"device {device!r} cannot run here: it needs onnxruntime's {wanted}, and this "
            f"onnxruntime has only {', '.join(sorted(have))}; use --device cpu"
        )
    return chain


def make_session(path: str | Path, device: str = "cpu", threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime session with an explicit intra-op thread count and no spin-waiting."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning workers would steal the cores that the decode thread and the other sessions need.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers_for(device))


class Detector(Protocol):
    """Anything that finds people in a batch of RGB frames."""

    name: str
    weights_path: Path
    gives_keypoints: bool
    timings: dict[str, float]  # worker seconds per step (letterbox, forward, postprocess)

    def submit(self, frames: np.ndarray) -> Future[list[Detections]]: ...

    def detect(self, frames: np.ndarray) -> list[Detections]: ...

    def close(self) -> None: ...


class _PooledOnnxDetector:
    """A pool of identical sessions and one worker thread per session."""

    name = "onnx"
    gives_keypoints = False

    def __init__(self, weights_path: Path, device: str, sessions: int, threads: int) -> None:
        if sessions < 1 or threads < 1:
            raise ValueError(f"sessions and threads must be >= 1, got {sessions}, {threads}")
        self.weights_path = weights_path
        self._pool: queue.Queue[ort.InferenceSession] = queue.Queue()
        for _ in range(sessions):
            self._pool.put(make_session(weights_path, device, threads))
        self._executor = ThreadPoolExecutor(sessions, thread_name_prefix=f"{self.name}-ort")
        self._lock = threading.Lock()
        self.timings: dict[str, float] = {}  # seconds of worker time per step, summed

    def _tick(self, step: str, since: float) -> float:
        now = time.perf_counter()
        with self._lock:
            self.timings[step] = self.timings.get(step, 0.0) + now - since
        return now

    def _run(self, session: ort.InferenceSession, frames: np.ndarray) -> list[Detections]:
        raise NotImplementedError

    def _with_session(
        self, fn: Callable[[ort.InferenceSession], list[Detections]]
    ) -> list[Detections]:
        session = self._pool.get()
        try:
            return fn(session)
        finally:
            self._pool.put(session)

    def submit(self, frames: np.ndarray) -> Future[list[Detections]]:
        """Start detecting on (B, H, W, 3) RGB uint8 frames; the future gives one per frame."""
        return self._executor.submit(self._with_session, lambda s: self._run(s, frames))

    def detect(self, frames: np.ndarray) -> list[Detections]:
        return self.submit(frames).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


# ---------------------------------------------------------------- YOLO11-pose


@dataclass(frozen=True)
class YoloPoseConfig:
    weights: str = "yolo11n-pose.onnx"
    imgsz: int = 640  # long side of the model input
    scaleup: bool = True  # enlarge small videos to imgsz (Ultralytics does); False is faster
    conf: float = 0.25  # person score threshold (Ultralytics' default)
    iou: float = 0.7  # NMS IoU (Ultralytics' default for pose)
    max_det: int = 100
    device: str = "cpu"
    sessions: int = 1
    threads: int = 2  # intra-op threads per session


def decode_yolo_pose(
    out: np.ndarray, lb: Letterbox, conf: float, iou: float, max_det: int
) -> Detections:
    """One frame's raw output (56, A) -> detections in original image pixels."""
    cand = np.nonzero(out[4] > conf)[0]
    if len(cand) == 0:
        return empty_detections(with_keypoints=True)
    pred = out[:, cand].T  # (K, 56)
    cxcy, wh = pred[:, 0:2], pred[:, 2:4]
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)  # (K, 4) model input px
    keep = nms(boxes, pred[:, 4], iou, max_det)
    boxes, scores = boxes[keep], pred[keep, 4]
    kp = pred[keep, 5:].reshape(-1, N_KPT, 3).copy()  # (N, 17, 3)
    kp[..., :2] = lb.to_image(kp[..., :2])
    boxes = lb.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
    return Detections(boxes.astype(np.float32), scores.astype(np.float32), kp.astype(np.float32))


def yolo_input(letterboxed: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float32 in [0, 1], in one C++ pass."""
    return cv2.dnn.blobFromImages(list(letterboxed), scalefactor=1.0 / 255.0)


class YoloPoseDetector(_PooledOnnxDetector):
    """YOLO11-pose: person boxes and COCO-17 keypoints from one forward pass."""

    name = "yolo-pose"
    gives_keypoints = True

    def __init__(
        self, cfg: YoloPoseConfig = YoloPoseConfig(), weights: WeightsSource | None = None
    ):
        self.cfg = cfg
        path = resolve_weights(cfg.weights, weights)
        super().__init__(path, cfg.device, cfg.sessions, cfg.threads)

    def _run(self, session: ort.InferenceSession, frames: np.ndarray) -> list[Detections]:
        c = self.cfg
        t = time.perf_counter()
        lb = letterbox_geometry(frames.shape[1], frames.shape[2], c.imgsz, scaleup=c.scaleup)
        x = yolo_input(letterbox_batch(frames, lb))  # (B, 3, h, w)
        t = self._tick("letterbox", t)
        out = session.run(None, {"images": x})[0]  # (B, 56, A)
        t = self._tick("forward", t)
        dets = [decode_yolo_pose(o, lb, c.conf, c.iou, c.max_det) for o in out]
        self._tick("postprocess", t)
        return dets


# ---------------------------------------------------------------- YOLOX-nano


@dataclass(frozen=True)
class YoloxConfig:
    weights: str = "yolox_nano_8xb8-300e_humanart-40f6f0d0.onnx"
    imgsz: int = 416  # fixed by the exported model
    conf: float = 0.3  # rtmlib's threshold for this model
    iou: float = 0.65  # the export already runs NMS; this only merges leftovers
    device: str = "cpu"
    sessions: int = 1
    threads: int = 2


class YoloxDetector(_PooledOnnxDetector):
    """OpenMMLab YOLOX-nano (human-art) person detector: boxes and scores only.

    The export has a fixed 1x3x416x416 BGR 0..255 input, letterboxed top-left with pad 114,
    and NMS inside the graph (``dets``); frames are run one at a time.
    """

    name = "yolox"

    def __init__(self, cfg: YoloxConfig = YoloxConfig(), weights: WeightsSource | None = None):
        self.cfg = cfg
        path = resolve_weights(cfg.weights, weights)
        super().__init__(path, cfg.device, cfg.sessions, cfg.threads)

    def _run(self, session: ort.InferenceSession, frames: np.ndarray) -> list[Detections]:
        c = self.cfg
        lb = letterbox_geometry(
            frames.shape[1], frames.shape[2], c.imgsz, minimal=False, center=False
        )
        results = []
        t = time.perf_counter()
        for img in letterbox_batch(frames, lb):
            x = cv2.dnn.blobFromImage(img, swapRB=True)  # (1, 3, 416, 416) BGR 0..255
            t = self._tick("letterbox", t)
            dets, labels = session.run(None, {"input": x})
            t = self._tick("forward", t)
            dets, labels = dets[0], labels[0]  # (N, 5), (N,)
            keep = (dets[:, 4] > c.conf) & (labels == 0)
            boxes, scores = dets[keep, :4], dets[keep, 4]
            kept = nms(boxes, scores, c.iou)
            boxes = lb.to_image(boxes[kept].reshape(-1, 2, 2)).reshape(-1, 4)
            results.append(Detections(boxes.astype(np.float32), scores[kept].astype(np.float32)))
            t = self._tick("postprocess", t)
        return results


def make_detector(name: str, weights: WeightsSource | None = None, **overrides: object) -> Detector:
    """Build a detector by name ("yolo-pose" or "yolox"); ``overrides`` set config fields."""
    if name == "yolo-pose":
        return YoloPoseDetector(YoloPoseConfig(**overrides), weights)  # type: ignore[arg-type]
    if name == "yolox":
        return YoloxDetector(YoloxConfig(**overrides), weights)  # type: ignore[arg-type]
    raise ValueError(f"unknown detector {name!r}; valid: 'yolo-pose', 'yolox'")
