"""The shared LRU map (kernels_lib/lru.py) and the guard's text-embedding cache built on it."""

from __future__ import annotations

import numpy as np
import pytest

from cellops.kernels_lib.lru import LRU


def test_a_hit_refreshes_an_entry_and_the_least_recent_is_dropped() -> None:
    cache: LRU[str, int | None] = LRU(2)
    cache.put("a", 1)
    cache.put("b", None)  # None is a value, not a miss
    assert cache.lookup("a") == (True, 1)  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.lookup("b") == (False, None)
    assert cache.lookup("a") == (True, 1)
    assert cache.lookup("c") == (True, 3)  # "a" is now the least recent
    cache.put("d", 4)
    assert cache.lookup("a") == (False, None)
    assert cache.lookup("c") == (True, 3) and cache.lookup("d") == (True, 4)
    assert len(cache) == 2


def test_a_cached_none_is_a_hit() -> None:
    cache: LRU[str, None] = LRU(1)
    cache.put("x", None)
    assert cache.lookup("x") == (True, None)
    cache.clear()
    assert cache.lookup("x") == (False, None)


def test_maxsize_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        LRU(0)


def test_more_new_texts_than_the_cache_holds_are_all_embedded(monkeypatch) -> None:
    """Before: the cache evicted this call's own first texts before it read them back (KeyError)."""
    from cellops.kernels_lib.guard import embed

    monkeypatch.setattr(embed, "_text_cache", LRU(2))
    texts = ["how do tides work", "bake bread at home", "train a puppy", "how do tides work"]
    got = embed.encode(texts)
    want = np.asarray(embed.embedder().encode(texts[:3]))
    assert got.shape == (4, want.shape[1])
    np.testing.assert_allclose(got[:3], want, atol=1e-6)
    np.testing.assert_array_equal(got[3], got[0])
    assert len(embed._text_cache) == 2
    assert embed.encode([]).shape == (0, want.shape[1])
