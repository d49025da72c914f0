"""One Registry[T] for every pluggable backend: models, embedders, chunkers, indexes, guard
checks, trackers. Built-ins register exactly like plugins; third-party packages add entries
through the entry-point group ``cellops.<kind>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import NotFoundError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object map with helpful misses and lazy entry-point discovery."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._loaded_entry_points = False

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` works as a decorator."""
        if obj is not None:
            self._items[name] = obj
            return obj

        def deco(o: T) -> T:
            self._items[name] = o
            return o

        return deco

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        from importlib.metadata import entry_points  # ~0.1 s: only when a name is missing

        for ep in entry_points(group=f"cellops.{self.kind}"):
            self._items.setdefault(ep.name, ep.load())

    def get(self, name: str) -> T:
        if name not in self._items:
            self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            raise NotFoundError(
                f"unknown {self.kind} '{name}'; available: {', '.join(self.names()) or '(none)'}"
            ) from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
