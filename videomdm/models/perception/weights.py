"""Model weights resolve in exactly one place.

Order: an explicit path, then ``$VIDEOMDM_WEIGHTS_DIR``, then the user cache
(``~/.cache/videomdm/weights``), then the official download URL. Downloads are refused when
``VIDEOMDM_OFFLINE`` (or ``HF_HUB_OFFLINE`` / ``YOLO_OFFLINE``) is set, so tests and air-gapped
machines fail with one clear message instead of hanging on the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

# file name -> official URL. Only files that have a stable public URL are listed.
OFFICIAL_URLS: dict[str, str] = {
    "yolo11n-pose.pt": "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n-pose.pt",
    "yolo11n-pose.onnx": "",  # exported from the .pt with Ultralytics; no official ONNX URL
    "yolox_nano_8xb8-300e_humanart-40f6f0d0.onnx": "",  # from the OpenMMLab rtmpose ONNX SDK zip
}

_OFFLINE_VARS = ("VIDEOMDM_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE")


class WeightsNotFoundError(FileNotFoundError):
    """Raised when a weights file is nowhere to be found; the message says where we looked."""


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "videomdm" / "weights"


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in _OFFLINE_VARS)


def resolve_weights(
    name: str, explicit: str | os.PathLike[str] | None = None, weights_dir: str | None = None
) -> Path:
    """Return the local path of weights file ``name``, downloading it only as a last resort."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.exists():
            raise WeightsNotFoundError(f"weights file {p} does not exist")
        return p
    searched: list[Path] = []
    for folder in (weights_dir, os.environ.get("VIDEOMDM_WEIGHTS_DIR"), cache_dir()):
        if folder:
            candidate = Path(folder).expanduser() / name
            searched.append(candidate)
            if candidate.exists():
                return candidate
    url = OFFICIAL_URLS.get(name, "")
    where = ", ".join(str(s) for s in searched) or "nowhere (VIDEOMDM_WEIGHTS_DIR is unset)"
    if not url or _offline():
        why = "no official download URL" if not url else "downloads are disabled (offline)"
        raise WeightsNotFoundError(
            f"weights file {name!r} not found; looked in {where}; {why}. "
            f"Put the file in a folder and set VIDEOMDM_WEIGHTS_DIR to it."
        )
    return _download(url, cache_dir() / name)


def _download(url: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, dest)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 (fixed https URLs)
                shutil.copyfileobj(r, tmp)
        except OSError as e:
            Path(tmp.name).unlink(missing_ok=True)
            raise WeightsNotFoundError(
                f"could not download {url}: {e}. Set VIDEOMDM_WEIGHTS_DIR to a folder holding "
                f"{dest.name}."
            ) from e
    os.replace(tmp.name, dest)
    return dest


def file_sha256(path: str | os.PathLike[str], n_hex: int = 16) -> str:
    """Short content hash of a weights file, used in extractor ids so results name their model."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n_hex]
