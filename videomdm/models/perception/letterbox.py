"""Letterboxing: an image resized into a detector's input keeping its aspect ratio, padded to
a multiple of the stride, and the geometry that maps points between the two."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into a model input: ``model_xy = image_xy * scale + pad``."""

    scale: float
    pad_x: int  # left padding, pixels
    pad_y: int  # top padding, pixels
    new_w: int  # resized image size inside the input
    new_h: int
    out_w: int  # model input size
    out_h: int

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Model-input coordinates (..., 2) -> original image coordinates."""
        return (xy - np.array([self.pad_x, self.pad_y], np.float32)) / self.scale

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Original image coordinates (..., 2) -> model-input coordinates."""
        return xy * self.scale + np.array([self.pad_x, self.pad_y], np.float32)


def letterbox_geometry(
    h: int,
    w: int,
    size: int | tuple[int, int] = 640,
    stride: int = 32,
    minimal: bool = True,
    center: bool = True,
    scaleup: bool = True,
) -> Letterbox:
    """Fit an ``h x w`` image into ``size`` (int: long side; tuple: (H, W)) keeping its aspect.

    With ``minimal`` the input is only padded up to a multiple of ``stride`` (e.g. 1768x994 ->
    384x640 instead of 640x640, ~40% less compute). ``center`` splits the padding between both
    sides as Ultralytics does; otherwise it all goes right/bottom (mmdet/YOLOX).
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    r = min(out_h / h, out_w / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    if minimal:
        out_w = int(np.ceil(new_w / stride) * stride)
        out_h = int(np.ceil(new_h / stride) * stride)
    dw, dh = (out_w - new_w) / 2, (out_h - new_h) / 2
    pad_x, pad_y = (int(round(dw - 0.1)), int(round(dh - 0.1))) if center else (0, 0)
    return Letterbox(r, pad_x, pad_y, new_w, new_h, out_w, out_h)


def letterbox_into(img: np.ndarray, lb: Letterbox, out: np.ndarray) -> None:
    """Resize ``img`` (H, W, 3) into the already padded canvas ``out`` (out_h, out_w, 3)."""
    region = out[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w]
    if img.shape[0] == lb.new_h and img.shape[1] == lb.new_w:
        region[...] = img
    else:
        cv2.resize(img, (lb.new_w, lb.new_h), dst=region, interpolation=cv2.INTER_LINEAR)


def letterbox(
    img: np.ndarray,
    size: int | tuple[int, int] = 640,
    stride: int = 32,
    pad_value: int = 114,
    minimal: bool = True,
    center: bool = True,
) -> tuple[np.ndarray, Letterbox]:
    """Letterbox one image (H, W, 3) uint8; returns the padded image and how to map back."""
    lb = letterbox_geometry(img.shape[0], img.shape[1], size, stride, minimal, center)
    out = np.full((lb.out_h, lb.out_w, 3), pad_value, np.uint8)
    letterbox_into(img, lb, out)
    return out, lb


def letterbox_batch(frames: np.ndarray, lb: Letterbox, pad_value: int = 114) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, out_h, out_w, 3) uint8 letterboxed with geometry ``lb``."""
    out = np.full((len(frames), lb.out_h, lb.out_w, 3), pad_value, np.uint8)
    for img, dst in zip(frames, out, strict=True):
        letterbox_into(img, lb, dst)
    return out
