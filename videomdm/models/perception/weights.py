"""Model weights resolve in exactly one place.

Order: an explicit path, then each folder of the ``WeightsSource`` (the settings give
``$VIDEOMDM_WEIGHTS_DIR``, then the user cache ``~/.cache/videomdm/weights``), then the official
download URL into the last folder. Downloads are refused when the source is offline, so tests
and air-gapped machines fail with one clear message instead of hanging on the network. The
environment is read by ``videomdm.config`` alone (``Settings.weights_source``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from videomdm.errors import UserError

log = logging.getLogger(__name__)

# file name -> official URL. Only files that have a stable public URL are listed.
OFFICIAL_URLS: dict[str, str] = {
    "yolo11n-pose.pt": "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n-pose.pt",
    "yolo11n-pose.onnx": "",  # exported from the .pt with Ultralytics; no official ONNX URL
    "yolox_nano_8xb8-300e_humanart-40f6f0d0.onnx": "",  # from the OpenMMLab rtmpose ONNX SDK zip
}


class WeightsNotFoundError(UserError, FileNotFoundError):
    """Raised when a weights file is nowhere to be found; the message says where we looked."""


@dataclass(frozen=True)
class WeightsSource:
    """Where weights files are looked for, in order, and whether downloading is allowed."""

    folders: tuple[str, ...] = ()  # searched in order; a download lands in the last one
    offline: bool = False


def resolve_weights(
    name: str, source: WeightsSource | None = None, explicit: str | os.PathLike[str] | None = None
) -> Path:
    """Return the local path of weights file ``name``, downloading it only as a last resort."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.exists():
            raise WeightsNotFoundError(f"weights file {p} does not exist")
        return p
    source = source or WeightsSource()
    searched = [Path(folder).expanduser() / name for folder in source.folders]
    for candidate in searched:
        if candidate.exists():
            return candidate
    url = OFFICIAL_URLS.get(name, "")
    where = ", ".join(str(s) for s in searched) or "nowhere (VIDEOMDM_WEIGHTS_DIR is unset)"
    if not url or source.offline or not searched:
        why = "no official download URL" if not url else "downloads are disabled (offline)"
        raise WeightsNotFoundError(
            f"weights file {name!r} not found; looked in {where}; {why}. "
            f"Put the file in a folder and set VIDEOMDM_WEIGHTS_DIR to it."
        )
    return _download(url, searched[-1])


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
