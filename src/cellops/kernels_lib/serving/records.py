"""The ``serve_requests`` table (migration 90): one row per served request, written once.

A row is keyed by the response id the client received (``chatcmpl-...``), so a request is
recorded exactly once (a retried INSERT of the same id fails loudly instead of counting twice).
Answered requests point at their ``prompt`` / ``rag`` run record (``run_id``), which holds the
full messages, trace and guard reports; the row keeps what monitoring reads: variant, client,
status, latency, tokens and the (redacted) input and output text. Client errors (4xx) are not
recorded: they are not answers.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..workspace import Workspace

STATUSES = ("ok", "blocked", "error", "timeout", "cancelled")
_COLS = ("id", "app", "variant", "target", "client", "status", "created_at", "latency_s", "ttft_s",
         "prompt_tokens", "completion_tokens", "run_id", "trace_id", "model", "input", "output",
         "stream", "pid", "record")


@dataclass
class RequestRow:
    id: str
    app: str
    variant: str
    target: str
    client: str | None
    status: str
    latency_s: float
    stream: bool
    created_at: float = field(default_factory=time.time)
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    run_id: str | None = None
    trace_id: str | None = None
    model: str | None = None
    input: str = ""
    output: str = ""
    record: dict[str, Any] = field(default_factory=dict)  # versions, guard verdicts, citations, error


def insert(ws: Workspace, row: RequestRow) -> None:
    """Commit the row before the client gets its answer. On the process's long-lived connection
    (``fast_write``): the commit is in the WAL file when this returns, so a SIGKILLed server loses
    nothing it answered, without the checkpoint + fsync a fresh connection's close costs (~10-40
    ms per request here); only a power loss could drop the last commits."""
    with ws.fast_write() as conn:
        conn.execute(f"INSERT INTO serve_requests ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})",
                     _ordered(row))


def _ordered(row: RequestRow) -> tuple[Any, ...]:
    extra = {"stream": int(row.stream), "pid": os.getpid(), "record": json.dumps(row.record, default=str)}
    return tuple(extra[c] if c in extra else getattr(row, c) for c in _COLS)


def get(ws: Workspace, request_id: str) -> dict[str, Any] | None:
    with ws.db() as conn:
        r = conn.execute("SELECT * FROM serve_requests WHERE id=?", (request_id,)).fetchone()
    return _dict(r) if r is not None else None


def rows(ws: Workspace, app: str, since: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The app's requests, oldest first (``since``: a unix time)."""
    q, args = "SELECT * FROM serve_requests WHERE app=?", [app]
    if since is not None:
        q, args = q + " AND created_at>=?", [*args, since]
    q += " ORDER BY created_at, rowid"
    if limit is not None:
        q, args = q + " LIMIT ?", [*args, limit]
    with ws.db() as conn:
        return [_dict(r) for r in conn.execute(q, args).fetchall()]


def count(ws: Workspace, app: str) -> int:
    with ws.db() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM serve_requests WHERE app=?", (app,)).fetchone()[0])


def apps(ws: Workspace) -> list[str]:
    with ws.db() as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT app FROM serve_requests ORDER BY app")]


def _dict(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["record"] = json.loads(d["record"])
    d["stream"] = bool(d["stream"])
    return d
