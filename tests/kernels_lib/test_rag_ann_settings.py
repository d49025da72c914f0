"""ScaNN query-time settings (leaves searched, reorder) and builds that aim at a recall."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.rag import ann


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4,000 clustered unit vectors, 300 held-out queries near them, and the exact top 10."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(200, 48))
    x = centers[rng.integers(0, 200, 4_000)] + 0.6 * rng.normal(size=(4_000, 48))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    q = (x[:300] + 0.05 * rng.normal(size=(300, 48))).astype(np.float32)
    return x, q, ann.exact_search(x, q, 10)[0]


def _recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)]))


def test_query_time_settings_reach_a_loaded_index(corpus, tmp_path: Path) -> None:
    """The leaves / reorder given to a search are the ones ScaNN uses (they used to be ignored:
    the serialized leaf count answered every search)."""
    x, q, truth = corpus
    cfg = ann.scann_config(len(x))
    ann.build(x, cfg, tmp_path / "scann")
    idx = ann.DenseIndex.load(x, cfg, tmp_path / "scann")
    one = _recall(idx.search(q, 10, leaves=1)[0], truth)
    stored = _recall(idx.search(q, 10)[0], truth)
    every = _recall(idx.search(q, 10, leaves=cfg.num_leaves, reorder=400)[0], truth)
    assert one < stored - 0.1 and every > 0.99 and every >= stored
    narrow = _recall(idx.search(q, 10, leaves=cfg.num_leaves, reorder=10)[0], truth)
    assert narrow < every  # reorder: fewer exactly re-scored candidates, lower recall
    # the one-query path passes them on as well (compared by recall, not id by id: ScaNN's
    # batched and one-query leaf choice differ for a few borderline queries at leaves=1)
    def one_by_one(**settings: int) -> float:
        return _recall([idx.search(v[None], 10, **settings)[0][0] for v in q[:60]], truth[:60])

    assert one_by_one(leaves=1) < one_by_one(leaves=cfg.num_leaves, reorder=400) - 0.1
    with pytest.raises(InvalidInputError, match=f"--leaves must be between 1 and {cfg.num_leaves}"):
        idx.search(q, 10, leaves=cfg.num_leaves + 1)
    with pytest.raises(InvalidInputError, match="--reorder must be at least 1"):
        idx.search(q, 10, reorder=0)
    with pytest.raises(InvalidInputError, match="apply only to ScaNN indexes"):
        ann.DenseIndex(x, ann.AnnConfig()).search(q, 10, leaves=3)


def test_build_aims_at_a_recall(corpus, tmp_path: Path) -> None:
    """A higher target buys more leaves or reorder; the recall measured on the corpus sample
    reaches the target and holds for held-out queries."""
    x, q, truth = corpus
    base = ann.scann_config(len(x))
    loose = ann.build(x, replace(base, target_recall=0.9), tmp_path / "loose")
    tight = ann.build(x, replace(base, target_recall=0.995), tmp_path / "tight")
    assert loose.target_recall == 0.9 and loose.measured_recall >= 0.9
    assert tight.target_recall == 0.995 and tight.measured_recall >= 0.995
    assert (tight.leaves_to_search, tight.reorder) != (loose.leaves_to_search, loose.reorder)
    idx = ann.DenseIndex.load(x, tight, tmp_path / "tight")  # stored settings answer by default
    held_out = _recall(idx.search(q, 10)[0], truth)
    at_loose = _recall(idx.search(q, 10, leaves=loose.leaves_to_search, reorder=loose.reorder)[0], truth)
    assert held_out >= 0.98 and held_out > at_loose
    assert ann.AnnConfig.from_dict(tight.to_dict()) == tight
    exact = ann.build(x, ann.AnnConfig(target_recall=0.98), tmp_path / "brute")
    assert exact.measured_recall == 1.0 and not (tmp_path / "brute").exists()
    with pytest.raises(InvalidInputError, match=r"--recall must be in \(0, 1\]"):
        ann.build(x, replace(base, target_recall=1.5), tmp_path / "bad")
