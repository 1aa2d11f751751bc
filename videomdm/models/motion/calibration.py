"""Calibrated cameras: intrinsics, lens distortion and (optionally) extrinsics, read from a
Qualisys ``.qca.txt`` file or a plain JSON / TOML file.

Conventions are the project's (``cameras``): OpenCV camera axes, ``X_cam = R @ X_world + t``
in metres, pixels ``K`` applied to distorted normalised coordinates, distortion in OpenCV's
order ``(k1, k2, p1, p2, k3)``.

A plain file names its cameras (tables or objects), each with the intrinsics as ``matrix``
(3x3) or ``fx``, ``fy``, ``cx``, ``cy``; optional ``size`` ``[width, height]``,
``distortion`` (or Pose2Sim's ``distortions``) ``[k1, k2, p1, p2(, k3)]``, ``rotation``
(3x3, or a Rodrigues vector as Pose2Sim writes it) and ``translation`` (metres, world to
camera). A file holding one camera's keys at its top level is that one camera (named by the
file). Qualisys stores the camera pose as its orientation and position in the world (mm,
Z up) and intrinsics in sensor units, 64 per pixel; the camera looks down its -Z, so the
OpenCV extrinsics are ``diag(1, -1, -1) @ [M | -M @ T]`` (``M`` the r11..r33 rows, ``T``
the position in metres), as Pose2Sim converts them.
"""

from __future__ import annotations

import json
import logging
import sys
import xml.etree.ElementTree as ET  # noqa: N817
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from videomdm.errors import UserError
from videomdm.models.motion.cameras import Intrinsics

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

QCA_UNITS_PER_PIXEL = 64.0  # Qualisys sensor coordinates per image pixel
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])  # Qualisys camera axes (looks down -Z) to OpenCV's


class CalibrationError(UserError):
    """A calibration file that does not parse; the message names the file and the problem."""


@dataclass(frozen=True)
class CameraModel:
    """One camera: pinhole intrinsics, lens distortion and, when known, its pose."""

    name: str
    intrinsics: Intrinsics  # fx, fy, cx, cy in pixels, and the image size
    dist: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)  # k1, k2, p1, p2, k3
    R: np.ndarray | None = None  # (3, 3) world -> camera  # noqa: N815
    t: np.ndarray | None = None  # (3,) metres

    @property
    def has_pose(self) -> bool:
        return self.R is not None and self.t is not None

    @property
    def center(self) -> np.ndarray:
        """The camera's position in the world ``(3,)``."""
        R, t = self.pose()  # noqa: N806
        return -R.T @ t

    def pose(self) -> tuple[np.ndarray, np.ndarray]:
        """``(R, t)``; ValueError for a camera with intrinsics only."""
        if self.R is None or self.t is None:
            raise CalibrationError(
                f"camera {self.name!r} has no extrinsics (rotation, translation)"
            )
        return self.R, self.t

    def undistort(self, px: np.ndarray) -> np.ndarray:
        """Pixels ``(..., 2)`` to undistorted normalised coordinates ``(..., 2)`` (NaN stays
        NaN): the input ``cameras`` functions and the lifter expect."""
        px = np.asarray(px, dtype=np.float64)
        flat = px.reshape(-1, 1, 2)
        ok = np.isfinite(flat).all(-1)[:, 0]
        out = np.full(flat.shape, np.nan)
        if ok.any():
            k = self.intrinsics.K
            out[ok] = cv2.undistortPoints(flat[ok], k, np.asarray(self.dist, np.float64))
        return out.reshape(px.shape)

    def distort(self, u: np.ndarray) -> np.ndarray:
        """Undistorted normalised coordinates ``(..., 2)`` to pixels ``(..., 2)``."""
        u = np.asarray(u, dtype=np.float64)
        k1, k2, p1, p2, k3 = (tuple(self.dist) + (0.0,) * 5)[:5]
        x, y = u[..., 0], u[..., 1]
        r2 = x * x + y * y
        radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        k = self.intrinsics
        return np.stack([k.fx * xd + k.cx, k.fy * yd + k.cy], axis=-1)

    def project(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """World points ``(..., 3)`` to pixels ``(..., 2)`` (with distortion) and their depth
        ``(...,)`` in this camera."""
        R, t = self.pose()  # noqa: N806
        cam = np.asarray(X, dtype=np.float64) @ R.T + t
        z = cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = cam[..., :2] / z[..., None]
        return self.distort(u), z


# --- reading ------------------------------------------------------------------------------


def load_calibration(path: str | Path) -> dict[str, CameraModel]:
    """Every camera of a calibration file (``.qca.txt``/``.xml``, ``.json``, ``.toml``), by
    name; ``CalibrationError`` naming the file when it cannot be read or parsed."""
    p = Path(path)
    if not p.is_file():
        raise CalibrationError(f"{p}: no such calibration file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CalibrationError(f"{p}: unreadable: {e}") from None
    return parse_calibration(text, str(p))


def parse_calibration(text: str, name: str) -> dict[str, CameraModel]:
    """The cameras of a calibration file's ``text``; ``name`` (the file's name or URI) picks
    the format by its ending and names the file in errors."""
    p = Path(name)
    lower = p.name.lower()
    try:
        if lower.endswith((".qca.txt", ".qca", ".xml")):
            cams = _read_qca(ET.fromstring(text), p)
        elif lower.endswith(".json"):
            cams = _plain_cameras(json.loads(text), p)
        elif lower.endswith(".toml"):
            cams = _plain_cameras(tomllib.loads(text), p)
        else:
            raise CalibrationError(f"{name}: unknown calibration format (.qca.txt, .json, .toml)")
    except CalibrationError:
        raise
    except (ET.ParseError, json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise CalibrationError(f"{name}: does not parse: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise CalibrationError(f"{name}: {type(e).__name__}: {e}") from None
    if not cams:
        raise CalibrationError(f"{name}: no camera in the file")
    return cams


def _read_qca(root: ET.Element, path: Path) -> dict[str, CameraModel]:
    cams = {}
    for i, tag in enumerate(root.iter("camera")):
        name = tag.get("serial") or f"cam{i + 1:02d}"
        fov, tr, intr = tag.find("fov_video"), tag.find("transform"), tag.find("intrinsic")
        if fov is None or tr is None or intr is None:
            raise CalibrationError(f"{path}: camera {name} lacks fov_video, transform or intrinsic")
        left, top = float(fov.attrib["left"]), float(fov.attrib["top"])
        width = int(float(fov.attrib["right"]) - left + 1)
        height = int(float(fov.attrib["bottom"]) - top + 1)

        def sensor(key: str, intr: ET.Element = intr) -> float:
            return float(intr.attrib[key]) / QCA_UNITS_PER_PIXEL

        k = Intrinsics(
            sensor("focalLengthU"),
            sensor("focalLengthV"),
            sensor("centerPointU") - left,
            sensor("centerPointV") - top,
            width,
            height,
        )
        dist = tuple(
            float(intr.attrib.get(key, 0.0))
            for key in (
                "radialDistortion1",
                "radialDistortion2",
                "tangentalDistortion1",
                "tangentalDistortion2",
                "radialDistortion3",
            )
        )
        m = np.array([[float(tr.attrib[f"r{r}{c}"]) for c in "123"] for r in "123"])
        position = np.array([float(tr.attrib[a]) for a in "xyz"]) / 1000.0
        R = _FLIP_YZ @ m  # noqa: N806
        cams[name] = CameraModel(name, k, dist, _rotation(R, path, name), -R @ position)
    return cams


def _plain_cameras(doc: Any, path: Path) -> dict[str, CameraModel]:
    if not isinstance(doc, Mapping):
        raise CalibrationError(f"{path}: expected a table of cameras, got {type(doc).__name__}")
    if "matrix" in doc or "fx" in doc:  # one camera at the top level
        stem = path.name.split(".")[0]
        return {stem: _plain_camera(stem, doc, path)}
    cams = {}
    for key, entry in doc.items():
        if not isinstance(entry, Mapping):
            continue  # e.g. Pose2Sim's [metadata] table holds no camera
        if "matrix" not in entry and "fx" not in entry:
            if key == "metadata":
                continue
            raise CalibrationError(f"{path}: camera {key!r} has no 'matrix' nor 'fx'")
        name = str(entry.get("name", key))
        cams[name] = _plain_camera(name, entry, path)
    return cams


def _plain_camera(name: str, d: Mapping[str, Any], path: Path) -> CameraModel:
    if "matrix" in d:
        m = np.asarray(d["matrix"], dtype=np.float64)
        if m.shape != (3, 3):
            raise CalibrationError(f"{path}: camera {name}: 'matrix' must be 3x3, got {m.shape}")
        fx, fy, cx, cy = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
    else:
        fx, fy, cx, cy = (float(d[k]) for k in ("fx", "fy", "cx", "cy"))
    size = d.get("size", (2 * cx, 2 * cy))
    if len(size) != 2:
        raise CalibrationError(f"{path}: camera {name}: 'size' must be [width, height]")
    if min(fx, fy) <= 0:
        raise CalibrationError(f"{path}: camera {name}: focal lengths must be positive")
    k = Intrinsics(float(fx), float(fy), float(cx), float(cy), int(size[0]), int(size[1]))
    dist = tuple(float(x) for x in d.get("distortion", d.get("distortions", ())))
    if len(dist) not in (0, 4, 5):
        raise CalibrationError(f"{path}: camera {name}: distortion has 4 or 5 values (k1..k3)")
    dist = (dist + (0.0,) * 5)[:5]
    if ("rotation" in d) != ("translation" in d):
        raise CalibrationError(f"{path}: camera {name}: give both rotation and translation")
    if "rotation" not in d:
        return CameraModel(name, k, dist)
    rot = np.asarray(d["rotation"], dtype=np.float64)
    if rot.shape == (3,):
        rot = np.asarray(cv2.Rodrigues(rot)[0], dtype=np.float64)
    t = np.asarray(d["translation"], dtype=np.float64).reshape(-1)
    if rot.shape != (3, 3) or t.shape != (3,):
        raise CalibrationError(
            f"{path}: camera {name}: rotation must be 3x3 or 3 values, translation 3 values"
        )
    return CameraModel(name, k, dist, _rotation(rot, path, name), t)


def _rotation(R: np.ndarray, path: Path, name: str) -> np.ndarray:  # noqa: N803
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        raise CalibrationError(f"{path}: camera {name}: the rotation is not a rotation matrix")
    return R


def camera_for(cameras: Mapping[str, CameraModel], video_name: str) -> CameraModel | None:
    """The camera of a video file: the one named like its stem (``cam01`` for
    ``cam01.mp4``), else the only camera of a one-camera file, else None."""
    stem = Path(video_name).name.split(".")[0]
    if stem in cameras:
        return cameras[stem]
    return next(iter(cameras.values())) if len(cameras) == 1 else None
