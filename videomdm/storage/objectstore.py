"""An object-store lake beyond its Delta tables: fsspec configured from the same storage
options, and a lock made of one object created only if absent.

deltalake takes ``storage_options`` in object_store's names (``AWS_ENDPOINT_URL``...); the
lake's other files (checkpoints, locks, videos in the same store) go through fsspec, which is
given the same settings once here as its defaults for the protocol, so a MinIO or on-premise
endpoint in ``VIDEOMDM_STORAGE_OPTIONS`` is enough for every read and write.

The lock relies on conditional writes (``If-None-Match: *``), which AWS S3, MinIO and R2 honour
and on which deltalake 1.x already relies for its commits: of two writers creating the same
lock object exactly one succeeds. A holder that dies leaves its lock; it expires after
``ttl_s`` (the object's age), and the next writer removes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone

import fsspec
import fsspec.config

log = logging.getLogger(__name__)

LOCK_TTL_S = 6 * 3600.0  # longer than any one item takes (a long video's extraction)


def fsspec_options(storage_options: Mapping[str, str] | None) -> dict[str, dict]:
    """fsspec's per-protocol defaults for deltalake-style ``storage_options`` (S3 today)."""
    opts = {k.upper(): v for k, v in (storage_options or {}).items()}
    s3: dict = {}
    client: dict = {}
    for key, name in (
        ("AWS_ACCESS_KEY_ID", "key"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
    ):
        if key in opts:
            s3[name] = opts[key]
    endpoint = opts.get("AWS_ENDPOINT_URL") or opts.get("AWS_ENDPOINT")
    if endpoint:
        client["endpoint_url"] = endpoint
    region = opts.get("AWS_REGION") or opts.get("AWS_DEFAULT_REGION")
    if region:
        client["region_name"] = region
    if client:
        s3["client_kwargs"] = client
    return {"s3": s3} if s3 else {}


def configure_fsspec(storage_options: Mapping[str, str] | None) -> None:
    """Make ``storage_options`` fsspec's defaults (checkpoints, locks, videos on the store)."""
    for protocol, kwargs in fsspec_options(storage_options).items():
        fsspec.config.conf.setdefault(protocol, {}).update(kwargs)


@contextlib.contextmanager
def object_lock(uri: str, ttl_s: float = LOCK_TTL_S, poll_s: float = 0.5) -> Iterator[None]:
    """Hold the lock object ``uri`` (created if absent, removed on exit); wait while another
    holder has it, and take over one older than ``ttl_s``."""
    fs, path = fsspec.core.url_to_fs(uri)
    owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "id": uuid.uuid4().hex})
    waited = 0.0
    while True:
        try:
            with fs.open(path, "xb") as f:  # If-None-Match: * (put-if-absent)
                f.write(owner.encode())
            break
        except FileExistsError:
            if _expired(fs, path, ttl_s):
                log.warning("lock %s is older than %.0f s: its holder died; taking it", uri, ttl_s)
                fs.rm(path)
                continue
            if waited == 0.0:
                log.info("waiting for %s (another run holds it)", uri)
            time.sleep(poll_s)
            waited += poll_s
    try:
        yield
    finally:
        fs.rm(path)


def _expired(fs: fsspec.AbstractFileSystem, path: str, ttl_s: float) -> bool:
    try:
        modified = fs.info(path).get("LastModified")
    except FileNotFoundError:
        return False  # released meanwhile: try again
    if not isinstance(modified, datetime):
        return False
    return (datetime.now(timezone.utc) - modified).total_seconds() > ttl_s
