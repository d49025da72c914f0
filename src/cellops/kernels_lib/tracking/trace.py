"""Traces: a run record holds a list of timed spans (render, guard, retrieve, generate...).

Every capability adds its steps to the same Trace, so one record shows where the time went.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Span:
    name: str
    start: float  # seconds since the trace started
    duration_s: float = 0.0
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    spans: list[Span] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    @contextmanager
    def span(self, name: str, **attrs: Any) -> Iterator[Span]:
        s = Span(name, time.perf_counter() - self.t0, attrs=dict(attrs))
        self.spans.append(s)
        try:
            yield s
        except BaseException as e:
            s.attrs["error"] = f"{type(e).__name__}: {e}"
            raise
        finally:
            s.duration_s = time.perf_counter() - self.t0 - s.start

    def to_list(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.spans]
