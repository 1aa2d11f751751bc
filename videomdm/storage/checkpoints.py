"""Checkpoints live beside the tables (``<lake>/checkpoints/<kind>/<run>.pt``), so an
object-store lake keeps them too.

Storage moves the files; the models serialise them (``torch.save``, and ``torch.load`` with
``weights_only=True`` in ``VideoMDM.from_checkpoint`` and ``lifter.load_checkpoint``), so
storage never imports torch.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec

from videomdm.storage.lake import Lake
from videomdm.storage.sources import local_path

LIFTER_CHECKPOINTS, VIDEOMDM_CHECKPOINTS = "lifter", "videomdm"  # folders under checkpoints/


def checkpoint_uri(lake: Lake, folder: str, run_id: str) -> str:
    """Where run ``run_id`` keeps its checkpoint (absolute for a local lake)."""
    return f"{lake.root}/checkpoints/{folder}/{run_id}.pt"


def store_checkpoint(local: str, uri: str) -> str:
    """Copy a local file to ``uri`` (any fsspec URI), creating its folder; returns the uri."""
    fs, path = fsspec.core.url_to_fs(uri)
    fs.makedirs(str(Path(path).parent), exist_ok=True)
    fs.put(local, path)
    return uri


def write_checkpoint(uri: str, write: Callable[[str], None]) -> str:
    """``write(local_path)`` into a temporary file, then store it at ``uri``."""
    with tempfile.TemporaryDirectory(prefix="videomdm-ckpt-") as tmp:
        local = str(Path(tmp) / Path(uri).name)
        write(local)
        return store_checkpoint(local, uri)


@contextlib.contextmanager
def open_checkpoint(uri: str) -> Iterator[str]:
    """A local path of the checkpoint at ``uri`` (downloaded while the context is open)."""
    with local_path(uri) as path:
        yield path
