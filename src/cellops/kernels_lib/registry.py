"""One Registry[T] for every pluggable backend: models, embedders, loaders, chunkers, guard
checks, chain steps, serve targets. Built-ins register exactly like plugins; a third-party package
adds entries through the entry-point group ``cellops.<group>`` (``cellops.models``,
``cellops.loaders``, ``cellops.guard_checks``, ... — see :data:`GROUPS`), for example::

    [project.entry-points."cellops.models"]
    myplug = "myplug:make_llm"
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import NotFoundError

T = TypeVar("T")
log = logging.getLogger(__name__)
GROUPS: dict[str, str] = {}  # entry-point group -> the kind it feeds (for docs and `cellops` help)


class Registry(Generic[T]):
    """A name -> object map with helpful misses and lazy entry-point discovery.

    Entry points are read on the first miss (``get``, ``in``, ``names``), not at import, so
    ``import cellops`` stays fast; a built-in of the same name wins over a plugin.
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind  # what a miss message calls an entry: "model backend"
        self.group = f"cellops.{group}"
        GROUPS[self.group] = kind
        self._items: dict[str, T] = {}
        self._broken: dict[str, str] = {}  # plugin name -> why its entry point did not load
        self._loaded_entry_points = False
        self._lock = threading.Lock()

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
        with self._lock:  # two threads missing at once must not see a half-filled map
            if self._loaded_entry_points:
                return
            from importlib.metadata import entry_points  # ~0.1 s: only when a name is missing

            for ep in entry_points(group=self.group):
                if ep.name in self._items:
                    continue
                try:
                    self._items[ep.name] = ep.load()
                except Exception as e:  # one broken plugin must not hide the built-ins
                    self._broken[ep.name] = f"{ep.value}: {type(e).__name__}: {e}"
                    log.warning("cellops plugin %s '%s' did not load (%s)", self.kind, ep.name, e)
            self._loaded_entry_points = True

    def get(self, name: str) -> T:
        if name not in self:
            if name in self._broken:
                raise NotFoundError(
                    f"{self.kind} '{name}' comes from a plugin that failed to import "
                    f"({self._broken[name]}); fix or reinstall that package"
                )
            raise NotFoundError(
                f"unknown {self.kind} '{name}'; available: {', '.join(self.names()) or '(none)'}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
