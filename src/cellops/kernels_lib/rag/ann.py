"""Dense nearest-neighbour search: exact brute force for small corpora, ScaNN (tree + asymmetric
hashing + exact reorder) above ``BRUTE_MAX`` vectors, with parameters chosen from the corpus size.

ScaNN's own ``load_searcher`` unpickles ``scann_docids.pkl`` when it is present; an index is
something users pass around, so this module never writes docids and loads through
``ScannNumpy(dir, assets)`` directly, refusing any folder that holds a pickle.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WorkspaceError

BRUTE_MAX = 20_000  # below this an exact matmul beats a tree (and is exact)


@dataclass(frozen=True)
class AnnConfig:
    """How the dense index is built and searched (recorded in the index version)."""

    kind: str = "brute"  # brute | scann
    num_leaves: int = 0
    leaves_to_search: int = 0
    training_sample: int = 0
    dims_per_block: int = 2
    aq_threshold: float = 0.2
    reorder: int = 0  # exact re-scoring of this many candidates
    soar_lambda: float = 0.0  # SOAR spilling strength (0: off)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnnConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def choose(n: int, dim: int) -> AnnConfig:
    """ScaNN settings from the corpus size, tuned on 60k docstring chunks (see
    benchmarks/bench_retrieval.py): ~n/150 leaves (~150 points each), SOAR spilling (each point
    also goes to a second, orthogonality-amplified leaf, which lifts recall far more cheaply than
    searching more leaves), 5% of the leaves searched, 2-dim AH blocks and an exact re-rank of 80
    candidates. Measured: recall@10 0.97 where the textbook setting (sqrt(n) leaves, 15% searched,
    no spilling) reached 0.92."""
    if n <= BRUTE_MAX:
        return AnnConfig("brute")
    leaves = max(64, min(4096, round(n / 150)))
    search = max(8, math.ceil(leaves * 0.05))
    return AnnConfig("scann", leaves, search, min(n, 250_000), 2, 0.2, 80, 1.0)


def build(vectors: np.ndarray, cfg: AnnConfig, folder: Path) -> None:
    """Train and serialize a ScaNN searcher into ``folder`` (brute force needs nothing)."""
    if cfg.kind != "scann":
        return
    from scann.scann_ops.py import scann_ops_pybind

    folder.mkdir(parents=True, exist_ok=True)
    searcher = (
        scann_ops_pybind.builder(vectors, 10, "dot_product")
        .tree(num_leaves=cfg.num_leaves, num_leaves_to_search=cfg.leaves_to_search,
              training_sample_size=cfg.training_sample, spherical=True,
              **({"soar_lambda": cfg.soar_lambda, "overretrieve_factor": 2.0} if cfg.soar_lambda else {}))
        .score_ah(cfg.dims_per_block, anisotropic_quantization_threshold=cfg.aq_threshold)
        .reorder(cfg.reorder)
        .build()
    )
    # relative paths: the folder is renamed from staging into the version's artifact folder
    searcher.serialize(str(folder), relative_path=True)


class DenseIndex:
    """Vectors (memory-mapped) + an optional ScaNN searcher; thread-safe searches."""

    def __init__(self, vectors: np.ndarray, cfg: AnnConfig, searcher: Any = None) -> None:
        self.vectors, self.cfg, self.searcher = vectors, cfg, searcher
        self._lock = threading.Lock()

    @classmethod
    def load(cls, vectors: np.ndarray, cfg: AnnConfig, folder: Path) -> DenseIndex:
        if cfg.kind != "scann":
            return cls(vectors, cfg)
        if any(folder.glob("*.pkl")):
            raise WorkspaceError(f"refusing to load {folder}: it contains a pickle file; rebuild the index")
        from scann.scann_ops.py import scann_ops_pybind

        assets = (folder / "scann_assets.pbtxt").read_text()
        searcher = scann_ops_pybind.ScannSearcher(
            scann_ops_pybind.scann_pybind.ScannNumpy(str(folder), assets))
        return cls(vectors, cfg, searcher)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each (m, k'), k' = min(k, n); rows sorted by descending score."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.vectors.shape[1])
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
        if self.searcher is None:
            return exact_search(self.vectors, q, k)
        # ScaNN's candidate pool must cover k; beyond the tuned pool, widen it for large k
        pre = max(self.cfg.reorder, 2 * k)
        if len(q) == 1:
            ids, scores = self.searcher.search(q[0], k, pre)
            return np.asarray(ids, np.int64)[None], np.asarray(scores, np.float32)[None]
        ids, scores = self.searcher.search_batched(q, k, pre)
        return np.asarray(ids, np.int64), np.asarray(scores, np.float32)


def exact_search(vectors: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by dot product (vectors are L2-normalised, so cosine)."""
    scores = q @ np.asarray(vectors).T
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64), np.take_along_axis(top, order, axis=1)
