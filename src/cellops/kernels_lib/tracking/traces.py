"""Traces in the workspace: ``save`` a finished Trace, ``get`` one back, ``search`` the list.

``save(ws, trace, run_id=None)`` ends the trace's root if it is still open and upserts every
span (tables ``spans`` and ``traces``, migration 60); callers record the run with
``record["trace_id"] = trace.trace_id`` and pass the run id here. Saving again is harmless
(a live view may save a running trace), and several Trace objects that joined one trace (a prompt
run inside a chain step, kernel-side spans of a pipeline cell) each save their own spans into the
same tree. Read paths never write.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import InvalidInputError, NotFoundError
from ..workspace import Workspace, get_workspace
from .trace import Span, Trace

_TOKENS = ('$."gen_ai.usage.input_tokens"', '$."gen_ai.usage.output_tokens"')
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")


@dataclass
class TraceSummary:
    """One row of ``search``: the root's name/kind/status, times, span and token counts."""

    trace_id: str
    name: str
    kind: str
    status: str
    start: float
    end: float | None
    spans: int
    input_tokens: int
    output_tokens: int
    run_id: str | None

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"duration_s": self.duration_s}


class TraceList(list):  # type: ignore[type-arg]
    """``search`` results: a list of TraceSummary that displays as a table."""

    def _rows(self) -> list[tuple[Any, ...]]:
        return [(t.trace_id[:12], t.name, t.kind, t.status,
                 datetime.fromtimestamp(t.start).strftime("%Y-%m-%d %H:%M:%S"),
                 "" if t.duration_s is None else f"{t.duration_s * 1000:.0f}", t.spans,
                 f"{t.input_tokens}+{t.output_tokens}" if t.input_tokens or t.output_tokens else "",
                 t.run_id or "") for t in self]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .. import html

        cols = ("trace", "name", "kind", "status", "started", "ms", "spans", "tokens", "run")
        if not self:
            msg = "no traces yet: run a %%prompt, %%rag ask or pipeline"
            return {"text/plain": msg, "text/html": html.box("traces", f"<p>{html.escape(msg)}</p>")}
        meta = f"{len(self)} traces · `%trace show ID` for one"
        return {"text/plain": html.text_table(cols, self._rows()) + f"\n[{meta}]",
                "text/html": html.box("traces", html.table(cols, self._rows()), meta)}


@dataclass
class StoredTrace:
    """A trace read back from the workspace: ``.spans`` in start order, root first."""

    trace_id: str
    spans: list[Span]
    summary: TraceSummary | None = None
    resource: dict[str, Any] = field(default_factory=lambda: {"service.name": "cellops"})

    @property
    def root(self) -> Span:
        ids = {s.span_id for s in self.spans}
        return next((s for s in self.spans if s.parent_id is None or s.parent_id not in ids), self.spans[0])

    @property
    def name(self) -> str:
        return self.root.name

    def children(self, span: Span) -> list[Span]:
        return [s for s in self.spans if s.parent_id == span.span_id]

    def to_dict(self) -> dict[str, Any]:
        """The JSON the live view, the server extension and ``%trace show`` all read."""
        return {"trace_id": self.trace_id, "name": self.name,
                "summary": self.summary.to_dict() if self.summary else None,
                "spans": [s.to_dict() for s in self.spans]}

    def to_otlp_json(self) -> dict[str, Any]:
        from .otlp_json import encode

        return encode(self.resource, self.spans)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .waterfall import render

        return render(self)


def save(ws: Workspace, trace: Trace, run_id: str | None = None) -> str:
    """Persist ``trace`` (ending its root) -> its trace id; ``run_id`` links the run record."""
    if run_id is not None and trace.root.end is None:
        trace.root.attrs["cellops.run_id"] = run_id
    trace.end()
    rows = [(s.trace_id, s.span_id, s.parent_id, s.name, s.kind, s.start, s.end, s.status,
             json.dumps(s.attrs, default=str), json.dumps(s.events, default=str)) for s in trace.spans]
    top = trace.root.parent_id is None
    with ws.fast_write() as conn:  # no checkpoint + fsync on the call's path (~40 ms here)
        conn.executemany("INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        _summarize(conn, trace.trace_id, run_id, top)
    return trace.trace_id


def link_run(ws: Workspace, trace_id: str, run_id: str) -> None:
    """Point a saved trace at the run recorded after it (the compare grid saves first)."""
    with ws.fast_write() as conn:
        conn.execute("UPDATE traces SET run_id=? WHERE trace_id=?", (run_id, trace_id))


def _summarize(conn: Any, trace_id: str, run_id: str | None, top: bool) -> None:
    """Recompute the trace's summary row from all its stored spans (other savers' included)."""
    root = conn.execute(
        "SELECT name, kind, status, started_at, ended_at FROM spans s WHERE trace_id=? AND "
        "(parent_id IS NULL OR parent_id NOT IN (SELECT span_id FROM spans WHERE trace_id=s.trace_id))"
        " ORDER BY parent_id IS NOT NULL, started_at LIMIT 1", (trace_id,)).fetchone()
    n, tin, tout = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM(json_extract(attributes, '{_TOKENS[0]}')), 0),"
        f" COALESCE(SUM(json_extract(attributes, '{_TOKENS[1]}')), 0) FROM spans WHERE trace_id=?",
        (trace_id,)).fetchone()
    old = conn.execute("SELECT run_id FROM traces WHERE trace_id=?", (trace_id,)).fetchone()
    keep = old["run_id"] if old is not None else None
    rid = run_id if run_id is not None and (top or keep is None) else keep
    conn.execute("INSERT OR REPLACE INTO traces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (trace_id, root["name"], root["kind"], root["status"], root["started_at"],
                  root["ended_at"], n, int(tin), int(tout), rid))


# -- reading ------------------------------------------------------------------------------------
def _span(row: Any) -> Span:
    return Span(row["name"], row["kind"], row["trace_id"], row["span_id"], row["parent_id"],
                row["started_at"], row["ended_at"], row["status"], json.loads(row["attributes"]),
                json.loads(row["events"]))


def _summary(row: Any) -> TraceSummary:
    return TraceSummary(row["trace_id"], row["name"], row["kind"], row["status"], row["started_at"],
                        row["ended_at"], row["spans"], row["input_tokens"], row["output_tokens"],
                        row["run_id"])


def resolve_id(ref: str, workspace: Workspace | None = None) -> str:
    """A trace id, a unique prefix of one (4+ characters), or a run id whose record has one."""
    ws = workspace or get_workspace()
    ref = (ref or "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{4,32}", ref):
        raise InvalidInputError(f"'{ref}' is not a trace id (hex); `%trace list` shows them")
    with ws.db() as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT trace_id FROM traces WHERE trace_id LIKE ? LIMIT 2", (ref + "%",))]
        if not ids:
            row = conn.execute("SELECT record FROM runs WHERE id=?", (ref,)).fetchone()
            tid = json.loads(row[0]).get("trace_id") if row is not None else None
            ids = [tid] if tid else []
    if len(ids) != 1:
        what = "no trace (or run)" if not ids else "more than one trace starts with"
        raise NotFoundError(f"{what} '{ref}'; `%trace list` shows the recent ones")
    return ids[0]


def get(trace_id: str, workspace: Workspace | None = None) -> StoredTrace:
    """The stored trace (``.spans`` with name, kind, ids, start, end, status, attributes)."""
    ws = workspace or get_workspace()
    tid = resolve_id(trace_id, ws)
    with ws.db() as conn:
        rows = conn.execute("SELECT * FROM spans WHERE trace_id=? ORDER BY started_at, rowid",
                            (tid,)).fetchall()
        srow = conn.execute("SELECT * FROM traces WHERE trace_id=?", (tid,)).fetchone()
    st = StoredTrace(tid, [_span(r) for r in rows], _summary(srow) if srow else None)
    root = st.root
    st.spans.sort(key=lambda s: (s is not root, s.start))
    return st


def _since(since: float | str | datetime | None) -> float | None:
    if since is None or isinstance(since, int | float):
        return since
    if isinstance(since, datetime):
        return since.timestamp()
    m = _AGO.match(since.strip())
    if m:
        return time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return datetime.fromisoformat(since.strip()).timestamp()
    except ValueError:
        raise InvalidInputError(
            f"since={since!r}: give epoch seconds, a datetime, an ISO date or an age like 30m, 2h, 1d"
        ) from None


def search(name: str | None = None, since: float | str | datetime | None = None,
           status: str | None = None, limit: int = 50,
           workspace: Workspace | None = None) -> TraceList:
    """Recent traces, newest first. ``name`` matches the root exactly, as its first word
    (``prompt`` finds ``prompt qa@1``), as its last word (``qa@1`` finds ``chain qa@1``) or as
    a glob (``rag*``); ``status`` is ok|error|unset."""
    ws = workspace or get_workspace()
    if limit < 1:
        raise InvalidInputError(f"limit must be at least 1 (got {limit})")
    q, args = "SELECT * FROM traces WHERE 1=1", []
    if name:
        pattern = name.replace("%", r"\%").replace("_", r"\_").replace("*", "%")
        q += r" AND (name = ? OR name LIKE ? ESCAPE '\' OR name LIKE ? ESCAPE '\' OR name LIKE ? ESCAPE '\')"
        args += [name, pattern, pattern + " %", "% " + pattern]
    if status:
        q, args = q + " AND status = ?", [*args, status]
    t = _since(since)
    if t is not None:
        q, args = q + " AND started_at >= ?", [*args, t]
    with ws.db() as conn:
        rows = conn.execute(q + " ORDER BY started_at DESC LIMIT ?", [*args, int(limit)]).fetchall()
    return TraceList(_summary(r) for r in rows)
