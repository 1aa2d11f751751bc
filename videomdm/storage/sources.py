"""Video sources: list files under a folder or any fsspec URI, hash them, read caption sidecars."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import os
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec

from videomdm.errors import UserError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .wmv .flv .ts .mts .m2ts .3gp .ogv".split()
)
CAPTIONS_CSV = "captions.csv"
INTRINSICS_SUFFIXES = (".intrinsics.toml", ".intrinsics.json")  # clip.intrinsics.toml
INTRINSICS_FILES = ("intrinsics.toml", "intrinsics.json")  # one per folder
_HASH_CHUNK = 4 << 20  # 4 MiB reads: sha256 runs at ~1 GB/s, larger chunks gain nothing


class SourceNotFoundError(UserError, FileNotFoundError):
    """The video source (folder, file or URI) does not exist."""


@dataclass(frozen=True)
class SourceFile:
    uri: str  # full URI (local files: absolute path)
    size: int | None
    mtime: float | None


def _fs(source: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(source)
    return fs, path


def _full_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return path if "file" in fs.protocol else fs.unstrip_protocol(path)


def list_videos(source: str) -> list[SourceFile]:
    """Video files (by extension) under ``source``, recursively, sorted by URI."""
    fs, root = _fs(source)
    if not fs.exists(root):
        raise SourceNotFoundError(f"video source {source} does not exist")
    if fs.isfile(root):
        found = {root: fs.info(root)}
    else:
        found = fs.find(root, detail=True)
    out = []
    for path, info in found.items():
        if posixpath.splitext(path)[1].lower() not in VIDEO_EXTENSIONS:
            continue
        mtime = info.get("mtime") or info.get("LastModified") or info.get("updated")
        if mtime is not None and not isinstance(mtime, (int, float)):
            mtime = getattr(mtime, "timestamp", lambda: None)()
        out.append(SourceFile(_full_uri(fs, path), info.get("size"), mtime))
    return sorted(out, key=lambda f: f.uri)


def file_exists(uri: str) -> bool:
    """Whether ``uri`` names an existing file (False when it cannot be asked)."""
    try:
        fs, path = _fs(uri)
        return bool(fs.exists(path))
    except (OSError, ValueError):
        return False


def sha256_file(uri: str) -> str:
    """Streamed sha256 of a file's bytes (never the whole file in memory)."""
    fs, path = _fs(uri)
    h = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_caption(uri: str) -> str | None:
    """Caption for a video: ``clip.txt`` beside ``clip.mp4``, else its row in ``captions.csv``.

    ``captions.csv`` has a header with a file column (``file``, ``filename``, ``video`` or
    ``path``) and a text column (``caption``, ``text`` or ``label``); without a header, the first
    two columns are file and caption.
    """
    fs, path = _fs(uri)
    stem, _ = posixpath.splitext(path)
    side = stem + ".txt"
    try:
        if fs.exists(side):
            with fs.open(side, "r", encoding="utf-8") as f:
                return f.read().strip() or None
        table = posixpath.join(posixpath.dirname(path), CAPTIONS_CSV)
        if fs.exists(table):
            with fs.open(table, "r", encoding="utf-8") as f:
                return _caption_from_csv(f.read(), posixpath.basename(path))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        log.warning("could not read the caption of %s: %s", uri, e)
    return None


def read_intrinsics_sidecar(uri: str) -> tuple[str, str] | None:
    """``(uri, text)`` of the camera file of a video: ``clip.intrinsics.toml`` (or ``.json``)
    beside ``clip.mp4``, else ``intrinsics.toml`` (or ``.json``) in its folder; None if none.
    Parsing is the caller's (``models.motion.calibration.parse_calibration``)."""
    fs, path = _fs(uri)
    stem, folder = posixpath.splitext(path)[0], posixpath.dirname(path)
    candidates = [stem + s for s in INTRINSICS_SUFFIXES]
    candidates += [posixpath.join(folder, n) for n in INTRINSICS_FILES]
    for side in candidates:
        if fs.exists(side):
            with fs.open(side, "r", encoding="utf-8") as f:
                return _full_uri(fs, side), f.read()
    return None


def _caption_from_csv(text: str, filename: str) -> str | None:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return None
    header = [c.strip().lower() for c in rows[0]]
    file_col = next(
        (header.index(c) for c in ("file", "filename", "video", "path") if c in header), None
    )
    text_col = next((header.index(c) for c in ("caption", "text", "label") if c in header), None)
    if file_col is None or text_col is None:
        file_col, text_col = 0, 1
    else:
        rows = rows[1:]
    for row in rows:
        if (
            len(row) > max(file_col, text_col)
            and posixpath.basename(row[file_col].strip()) == filename
        ):
            return row[text_col].strip() or None
    return None


@contextlib.contextmanager
def local_path(uri: str) -> Iterator[str]:
    """A local file path for ``uri`` (a video, a checkpoint): itself when local, else a
    temporary download removed on exit."""
    fs, path = _fs(uri)
    if "file" in fs.protocol:
        yield path
        return
    suffix = posixpath.splitext(path)[1]
    with tempfile.TemporaryDirectory(prefix="videomdm-") as tmp:
        local = os.path.join(tmp, posixpath.basename(path) or "file" + suffix)
        fs.get(path, local)
        yield local
