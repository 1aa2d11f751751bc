"""2D human pose, COCO-17 keypoints ``(N, 17, 3)`` x, y, score in image pixels, two backends.

- ``yolo-pose``: the keypoints YOLO11-pose already predicted with its boxes (no second model).
- ``vitpose``: top-down ViTPose (Hugging Face ``VitPoseForPoseEstimation``) on person crops.

ViTPose geometry follows the released models (mmpose ``TopDownAffine(use_udp=True)``, as in the
transformers image processor): each box is widened to the 192:256 aspect, padded by 1.25, and
warped so that the crop's pixel grid 0..W-1 spans it; the heatmap grid 0..w-1 spans the same
region ("unbiased" corner-aligned mapping), so heatmap -> image is one affine map per person.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from videomdm.models.perception.config import VitPoseSettings
from videomdm.models.perception.detection import N_KPT, Detections
from videomdm.models.perception.weights import WeightsSource, resolve_weights

if TYPE_CHECKING:  # torch is imported only when ViTPose is used (300 MB, 1-2 s to import)
    import torch

log = logging.getLogger(__name__)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class PoseEstimator(Protocol):
    """Keypoints for the people a detector found, frame by frame."""

    name: str

    def estimate(self, frames: np.ndarray, dets: Sequence[Detections]) -> list[np.ndarray]:
        """frames (B, H, W, 3) RGB uint8, one Detections per frame -> one (N, 17, 3) per frame."""
        ...


class YoloPoseKeypoints:
    """The ``yolo-pose`` backend: passes through the keypoints of the YOLO11-pose detector."""

    name = "yolo-pose"

    def estimate(self, frames: np.ndarray, dets: Sequence[Detections]) -> list[np.ndarray]:
        out = []
        for d in dets:
            if d.keypoints is None:
                raise ValueError("pose backend 'yolo-pose' needs the 'yolo-pose' detector")
            out.append(d.keypoints)
        return out


# ---------------------------------------------------------------- crop geometry


def box_to_center_size(
    boxes: np.ndarray, aspect_wh: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """xyxy boxes (N, 4) -> centers (N, 2) and crop sizes (N, 2) w, h in image pixels.

    The box grows along one axis to the model's aspect, then both sides by ``padding``.
    """
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    w2 = np.where(w > aspect_wh * h, w, h * aspect_wh)
    h2 = np.where(w > aspect_wh * h, w / aspect_wh, h)
    return centers.astype(np.float64), np.stack([w2, h2], 1).astype(np.float64) * padding


def crop_matrix(center: np.ndarray, size: np.ndarray, out_wh: tuple[int, int]) -> np.ndarray:
    """(2, 3) affine image -> crop; pixel 0 and W-1 of the crop lie on the region's edges."""
    sx = (out_wh[0] - 1) / size[0]
    sy = (out_wh[1] - 1) / size[1]
    return np.array(
        [[sx, 0.0, sx * (size[0] / 2 - center[0])], [0.0, sy, sy * (size[1] / 2 - center[1])]]
    )


def crop_people(
    frame: np.ndarray, centers: np.ndarray, sizes: np.ndarray, out_hw: tuple[int, int]
) -> np.ndarray:
    """Warp each person region of ``frame`` (H, W, 3) to (N, out_h, out_w, 3), bilinear."""
    out = np.empty((len(centers), out_hw[0], out_hw[1], 3), np.uint8)
    for i, (c, s) in enumerate(zip(centers, sizes, strict=True)):
        m = crop_matrix(c, s, (out_hw[1], out_hw[0]))
        cv2.warpAffine(frame, m, (out_hw[1], out_hw[0]), dst=out[i], flags=cv2.INTER_LINEAR)
    return out


# ---------------------------------------------------------------- heatmap decoding


def _argmax_2d(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, h, w) -> integer peaks (N, K, 2) x, y and peak values (N, K)."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    idx = flat.argmax(axis=2)
    xy = np.stack([idx % w, idx // w], axis=-1)
    return xy, np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]


def refine_dark(heatmaps: np.ndarray, xy: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DARK sub-pixel refinement (Zhang et al., CVPR 2020): one Newton step on the log-heatmap.

    The heatmap is first smoothed with a Gaussian (max preserved) so that its log is close to
    a quadratic around the peak; for a Gaussian-shaped peak the step lands exactly on it.
    heatmaps (N, K, h, w), xy (N, K, 2) integer peaks -> (N, K, 2) float.
    """
    n, k, h, w = heatmaps.shape
    maps = heatmaps.reshape(n * k, h, w).astype(np.float32)
    blurred = np.empty_like(maps)
    for i, m in enumerate(maps):
        b = cv2.GaussianBlur(m, (kernel, kernel), 0)
        peak = b.max()
        blurred[i] = b * (m.max() / peak) if peak > 0 else b
    logm = np.log(np.maximum(blurred, 1e-10))
    logm = np.pad(logm, ((0, 0), (1, 1), (1, 1)), mode="edge")  # (NK, h+2, w+2)
    px, py = xy.reshape(-1, 2).T + 1
    j = np.arange(n * k)

    def at(dx: int, dy: int) -> np.ndarray:
        return logm[j, py + dy, px + dx].astype(np.float64)

    dx = 0.5 * (at(1, 0) - at(-1, 0))
    dy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = at(1, 0) - 2 * at(0, 0) + at(-1, 0)
    dyy = at(0, 1) - 2 * at(0, 0) + at(0, -1)
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    inner = (px > 1) & (px < w) & (py > 1) & (py < h)  # padded coords: one pixel from the edge
    ok = inner & (np.abs(det) > 1e-12) & (dxx < 0) & (dyy < 0)
    safe = np.where(ok, det, 1.0)
    off_x = np.where(ok, -(dyy * dx - dxy * dy) / safe, 0.0)
    off_y = np.where(ok, -(dxx * dy - dxy * dx) / safe, 0.0)
    off = np.clip(np.stack([off_x, off_y], -1), -1.0, 1.0)  # a peak never moves a whole pixel
    return (xy.reshape(-1, 2) + off).reshape(n, k, 2)


def refine_quarter(heatmaps: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Classic refinement: move 0.25 px from the peak toward the higher neighbour."""
    n, k, h, w = heatmaps.shape
    maps = heatmaps.reshape(n * k, h, w)
    x, y = xy.reshape(-1, 2).T
    j = np.arange(n * k)
    xr, xl = np.minimum(x + 1, w - 1), np.maximum(x - 1, 0)
    yd, yu = np.minimum(y + 1, h - 1), np.maximum(y - 1, 0)
    off = np.stack(
        [np.sign(maps[j, y, xr] - maps[j, y, xl]), np.sign(maps[j, yd, x] - maps[j, yu, x])], -1
    )
    return (xy.reshape(-1, 2) + 0.25 * off).reshape(n, k, 2)


def heatmaps_to_keypoints(
    heatmaps: np.ndarray,
    centers: np.ndarray,
    sizes: np.ndarray,
    refine: str = "dark",
    kernel: int = 11,
) -> np.ndarray:
    """Heatmaps (N, K, h, w) of crops (centers, sizes) -> keypoints (N, K, 3) x, y, score."""
    n, k, h, w = heatmaps.shape
    xy_int, scores = _argmax_2d(heatmaps)
    if refine == "dark":
        xy = refine_dark(heatmaps, xy_int, kernel)
    elif refine == "quarter":
        xy = refine_quarter(heatmaps, xy_int)
    elif refine == "none":
        xy = xy_int.astype(np.float64)
    else:
        raise ValueError(f"unknown refine {refine!r}; valid: 'dark', 'quarter', 'none'")
    scale = sizes / np.array([w - 1, h - 1], np.float64)  # (N, 2) image px per heatmap px
    origin = centers - sizes / 2  # (N, 2) image position of heatmap pixel (0, 0)
    img_xy = origin[:, None, :] + xy * scale[:, None, :]  # (N, K, 2)
    return np.concatenate([img_xy, scores[..., None]], -1).astype(np.float32)


# ---------------------------------------------------------------- ViTPose backend


def resolve_vitpose_folder(model: str, weights: WeightsSource | None = None) -> Path:
    """A local ``from_pretrained`` folder for ``model`` (a path, or a name under weights dir)."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p
    return resolve_weights(model.split("/")[-1], weights)


def load_vitpose(folder: str | os.PathLike[str]) -> torch.nn.Module:
    """Load a transformers ViTPose checkpoint from a local folder (never downloads)."""
    from transformers import VitPoseForPoseEstimation

    return VitPoseForPoseEstimation.from_pretrained(str(folder), local_files_only=True)


class VitPoseEstimator:
    """The ``vitpose`` backend: crops every detected person and decodes ViTPose heatmaps."""

    name = "vitpose"

    def __init__(
        self,
        cfg: VitPoseSettings = VitPoseSettings(),
        weights: WeightsSource | None = None,
        model: torch.nn.Module | None = None,
    ) -> None:
        import torch

        if cfg.precision not in ("fp32", "bf16"):
            raise ValueError(f"unknown precision {cfg.precision!r}; valid: 'fp32', 'bf16'")
        self.cfg = cfg
        self.folder: Path | None = None
        if model is None:
            self.folder = resolve_vitpose_folder(cfg.model, weights)
            model = load_vitpose(self.folder)
        self.model = model.eval().to(cfg.device)
        config: Any = self.model.config
        backbone = config.backbone_config
        size = backbone.image_size
        self.input_hw = (int(size[0]), int(size[1]))  # (256, 192) for the released models
        experts = getattr(backbone, "num_experts", 1)
        self._dataset_index = 0 if experts > 1 else None  # ViTPose+ MoE: expert 0 is COCO
        if cfg.threads:
            torch.set_num_threads(cfg.threads)

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 crops -> heatmaps (N, 17, h/4, w/4) float32."""
        import torch

        x = (crops.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        pixels = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(self.cfg.device)
        kwargs = {}
        if self._dataset_index is not None:
            kwargs["dataset_index"] = torch.full((len(x),), self._dataset_index)
        bf16 = self.cfg.precision == "bf16"
        amp = torch.autocast(pixels.device.type, torch.bfloat16) if bf16 else nullcontext()
        with torch.inference_mode(), amp:
            heatmaps = self.model(pixel_values=pixels, **kwargs).heatmaps
        return heatmaps.float().cpu().numpy()[:, :N_KPT]

    def estimate(self, frames: np.ndarray, dets: Sequence[Detections]) -> list[np.ndarray]:
        c = self.cfg
        aspect = self.input_hw[1] / self.input_hw[0]
        crops, centers, sizes, counts = [], [], [], []
        for frame, d in zip(frames, dets, strict=True):
            ctr, sz = box_to_center_size(d.boxes, aspect, c.box_padding)
            crops.append(crop_people(frame, ctr, sz, self.input_hw))  # (N, 256, 192, 3)
            centers.append(ctr)
            sizes.append(sz)
            counts.append(len(d))
        if sum(counts) == 0:
            return [np.zeros((0, N_KPT, 3), np.float32) for _ in counts]
        all_crops = np.concatenate(crops)
        heat = np.concatenate(
            [
                self._forward(all_crops[i : i + c.crops_per_forward])
                for i in range(0, len(all_crops), c.crops_per_forward)
            ]
        )  # (sum N, 17, 64, 48)
        kp = heatmaps_to_keypoints(
            heat, np.concatenate(centers), np.concatenate(sizes), c.refine, c.dark_kernel
        )
        return np.split(kp, np.cumsum(counts)[:-1])


def make_pose_estimator(
    name: str, settings: VitPoseSettings = VitPoseSettings(), weights: WeightsSource | None = None
) -> PoseEstimator:
    """Build a pose backend by name: "yolo-pose" or "vitpose"."""
    if name == "yolo-pose":
        return YoloPoseKeypoints()
    if name == "vitpose":
        return VitPoseEstimator(settings, weights)
    raise ValueError(f"unknown pose backend {name!r}; valid: 'yolo-pose', 'vitpose'")
