"""A small thread-safe least-recently-used map, for caches of values computed outside its lock.

``functools.lru_cache`` fits a pure function of hashable arguments; this fits a cache whose values
are computed elsewhere (a batch of embeddings, a rendered prompt's tokens) and may be None.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_MISSING = object()


class LRU(Generic[K, V]):
    """At most ``maxsize`` entries; a hit makes an entry the most recent, a put beyond the bound
    drops the least recent."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """(True, value) on a hit, (False, None) on a miss."""
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                return False, None
            self._data.move_to_end(key)
            return True, value  # type: ignore[return-value]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
