"""Traces: one tree of timed spans per call (magic cell, API call, chain run, pipeline run).

``Trace(name, kind, **attrs)`` opens the root span; ``trace.span(name, kind="step", **attrs)``
nests a child under the span currently open in this trace. "Currently open" lives in a
ContextVar, so asyncio tasks and threads started with a copied context nest correctly; a thread
with a fresh context (a plain ThreadPoolExecutor worker) parents to the root.

A Trace made while a span of *another* trace is open (a prompt run inside a chain step), or in a
process started with ``CELLOPS_TRACEPARENT`` / ``CELLOPS_TRACEPARENT_FILE`` (a pipeline kernel),
joins that trace: same trace id, root parented to the open (or remote) span. Each Trace still
saves its own spans (``tracking.traces.save``), so the store ends up with one tree.

Every span is also a real OpenTelemetry span of cellops' own TracerProvider (``otel.py``), ended
with the same ids, times, attributes and events, so an OTLP collector sees the same tree.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import otel

KINDS = ("chain", "llm", "retriever", "embedding", "guard", "tool", "reranker", "step")
ENV_TRACEPARENT = "CELLOPS_TRACEPARENT"
ENV_TRACEPARENT_FILE = "CELLOPS_TRACEPARENT_FILE"  # rewritten per cell by the pipeline runner

Listener = Callable[["Span", str], None]  # (span, "start" | "end" | "event")
_current: ContextVar[Span | None] = ContextVar("cellops_current_span", default=None)


@dataclass(eq=False)
class Span:
    """One timed step. ``start``/``end`` are epoch seconds; ``status`` is unset|ok|error."""

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start: float
    end: float | None = None
    status: str = "unset"
    attrs: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _otel: Any = field(default=None, repr=False)
    _owner: Trace | None = field(default=None, repr=False)

    @property
    def attributes(self) -> dict[str, Any]:
        return self.attrs

    @property
    def duration_s(self) -> float:
        return ((self.end if self.end is not None else time.time()) - self.start)

    def add_event(self, name: str, **attrs: Any) -> None:
        """A point-in-time note (a guard verdict, retrieved chunk ids and scores, a cache hit)."""
        ev = {"name": name, "time": time.time(), "attributes": attrs}
        self.events.append(ev)
        otel.add_event(self._otel, ev)
        if self._owner is not None:
            self._owner._notify(self, "event")

    def to_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "span_id": self.span_id, "parent_id": self.parent_id,
                "name": self.name, "kind": self.kind, "start": self.start, "end": self.end,
                "status": self.status, "attributes": self.attrs, "events": self.events}


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """W3C ``00-<32 hex trace id>-<16 hex span id>-<flags>`` -> (trace_id, span_id)."""
    parts = value.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        return None
    return parts[1], parts[2]


def traceparent(span: Span) -> str:
    return f"00-{span.trace_id}-{span.span_id}-01"


def _remote_parent() -> tuple[str, str] | None:
    value = os.environ.get(ENV_TRACEPARENT, "")
    path = os.environ.get(ENV_TRACEPARENT_FILE)
    if path:
        try:
            value = Path(path).read_text().strip() or value
        except OSError:
            pass
    return parse_traceparent(value) if value else None


class Trace:
    """A tree of spans rooted at ``name``; also a context manager that ends the root."""

    def __init__(self, name: str = "call", kind: str = "chain", *, remote: tuple[str, str] | None = None,
                 **attrs: Any) -> None:
        """``remote``: (trace id, span id) of a caller's span, e.g. a load balancer's W3C
        ``traceparent`` header; it wins over the environment's remote parent."""
        self.spans: list[Span] = []
        self._listeners: list[Listener] = []
        ambient = _current.get()
        # the in-process trace this one runs inside (a chain run in a grid cell): its live views
        # see this trace's spans too
        self._outer: Trace | None = None
        if ambient is not None and ambient.end is None:
            parent: tuple[str, str] | None = (ambient.trace_id, ambient.span_id)
            parent_otel = ambient._otel
            self._outer = ambient._owner
        else:
            parent, parent_otel = remote or _remote_parent(), None
        self.root = self._open(name, kind, attrs, parent, parent_otel)
        self.trace_id = self.root.trace_id
        self._token: Any = None

    # -- spans ----------------------------------------------------------------------------------
    def _open(self, name: str, kind: str, attrs: dict[str, Any], parent: tuple[str, str] | None,
              parent_otel: Any, start: float | None = None) -> Span:
        if kind not in KINDS:
            raise ValueError(f"span kind {kind!r} is not one of {', '.join(KINDS)}")
        start = time.time() if start is None else start
        handle, trace_id, span_id = otel.start_span(name, start, parent, parent_otel)
        s = Span(name, kind, trace_id, span_id, parent[1] if parent else None, start,
                 attrs=dict(attrs), _otel=handle, _owner=self)
        self.spans.append(s)
        self._notify(s, "start")
        return s

    def _close(self, s: Span, error: BaseException | None = None, end: float | None = None) -> None:
        if s.end is not None:
            return
        if error is not None:
            s.status = "error"
            s.attrs.setdefault("error", f"{type(error).__name__}: {error}")
            s.add_event("exception", **{
                "exception.type": type(error).__name__, "exception.message": str(error),
                "exception.stacktrace": "".join(traceback.format_exception(error))})
        elif s.status == "unset":
            s.status = "ok"
        s.end = time.time() if end is None else end
        otel.end_span(s)
        self._notify(s, "end")

    def _parent(self) -> Span:
        cur = _current.get()
        if cur is not None and cur._owner is self and cur.end is None:
            return cur
        return self.root

    @contextmanager
    def span(self, name: str, kind: str = "step", **attrs: Any) -> Iterator[Span]:
        """A child of the open span; an exception inside marks it (and only it) error, re-raised."""
        p = self._parent()
        s = self._open(name, kind, attrs, (p.trace_id, p.span_id), p._otel)
        token = _current.set(s)
        try:
            yield s
        except BaseException as e:
            self._close(s, e)
            raise
        finally:
            _current.reset(token)
            self._close(s)

    def start_span(self, name: str, kind: str = "step", parent: Span | None = None, **attrs: Any) -> Span:
        """Open a span without a ``with`` block (callbacks such as papermill's cell hooks); it
        does not become the open span; close it with ``end_span``."""
        p = parent or self._parent()
        return self._open(name, kind, attrs, (p.trace_id, p.span_id), p._otel)

    def end_span(self, span: Span, error: BaseException | None = None) -> None:
        self._close(span, error)

    def add_span(self, name: str, kind: str, start: float, end: float, parent: Span | None = None,
                 status: str = "ok", events: list[tuple[str, dict[str, Any]]] | None = None,
                 **attrs: Any) -> Span:
        """A finished span with known times (e.g. one guard check, timed by the guard itself)."""
        p = parent or self._parent()
        s = self._open(name, kind, attrs, (p.trace_id, p.span_id), p._otel, start)
        s.status = status
        for ev_name, ev_attrs in events or []:
            s.add_event(ev_name, **ev_attrs)
        self._close(s, end=max(end, start))
        return s

    @contextmanager
    def activate(self, span: Span | None = None) -> Iterator[Span]:
        """Make ``span`` (default: the root) the open span in this thread, e.g. in a worker."""
        s = span or self.root
        token = _current.set(s)
        try:
            yield s
        finally:
            _current.reset(token)

    def end(self, status: str | None = None) -> None:
        """End the root (idempotent); ``status`` overrides ok (e.g. "error")."""
        if status is not None and self.root.end is None:
            self.root.status = status
        self._close(self.root)

    def __enter__(self) -> Trace:
        self._token = _current.set(self.root)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        self._close(self.root, exc)

    # -- listeners (the live waterfall) ---------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """``listener(span, "start"|"end"|"event")`` on every change; one that raises is dropped."""
        self._listeners.append(listener)

    def _notify(self, s: Span, what: str) -> None:
        for fn in list(self._listeners):
            try:
                fn(s, what)
            except Exception as e:  # a broken view must not break the call it watches: drop it, say why
                self._listeners.remove(fn)
                logging.getLogger(__name__).warning(
                    "trace %s: a live view stopped updating (%s: %s)", self.trace_id, type(e).__name__, e)
        if self._outer is not None:
            self._outer._notify(s, what)

    # -- views ----------------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .waterfall import render

        return render(self)

    def find(self, name: str) -> Span | None:
        return next((s for s in self.spans if s.name == name), None)

    def to_list(self) -> list[dict[str, Any]]:
        """The steps under the root, flat in start order (``start`` relative to the root)."""
        t0 = self.root.start
        return [{"name": s.name, "kind": s.kind, "span_id": s.span_id, "parent_id": s.parent_id,
                 "start": round(s.start - t0, 6), "duration_s": round(s.duration_s, 6),
                 "status": s.status, "attrs": s.attrs}
                for s in self.spans if s is not self.root]
