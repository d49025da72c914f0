"""A chain run's result: the output, every step's output and status, the trace it made."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from .. import html
from ..errors import CellopsError
from .context import preview


@dataclass
class StepResult:
    name: str
    type: str
    kind: str
    status: str  # ok | skipped | blocked | error
    output: Any = None
    latency_s: float = 0.0
    error: str | None = None
    tokens: int = 0  # completion tokens of the step's model call
    exception: BaseException | None = field(default=None, repr=False)  # what a failed step raised

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "kind": self.kind, "status": self.status,
                "output": preview(self.output), "latency_s": round(self.latency_s, 4),
                "error": self.error}


@dataclass
class ChainRun:
    """``.output`` is what the chain returns; ``.steps`` maps step name -> output."""

    chain: str  # NAME@V
    output: Any
    results: list[StepResult]
    trace_id: str
    run_id: str | None
    status: str  # ok | blocked | error
    inputs: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    wall_s: float = 0.0
    stopped_at: str | None = None  # the step that blocked or failed
    trace: Any = field(default=None, repr=False)  # the run's Trace (its waterfall is in the HTML)

    @property
    def steps(self) -> dict[str, Any]:
        return {r.name: r.output for r in self.results}

    def __str__(self) -> str:
        return preview(self.output, 10_000)

    def summary(self) -> str:
        stop = f" at step {self.stopped_at}" if self.stopped_at else ""
        run = f" · run {self.run_id}" if self.run_id else ""
        return (f"{self.chain} · {self.status}{stop} · {len(self.results)} steps · {self.wall_s:.2f}s"
                f" · trace {self.trace_id}{run}")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cols = ("step", "type", "status", "s", "output")
        rows = [(r.name, r.type, r.status, f"{r.latency_s:.2f}",
                 (r.error or preview(r.output, 80)).replace("\n", " ")) for r in self.results]
        marks = [[escape(r.name), escape(r.type),
                  f"<span class='{'bad' if r.status in ('error', 'blocked') else 'ok'}'>{escape(r.status)}</span>",
                  f"{r.latency_s:.2f}", html.pre(r.error or preview(r.output, 2000))] for r in self.results]
        body = html.pre(preview(self.output, 10_000)) + html.table(cols, marks, raw=True)
        if self.trace is not None:
            from ..tracking import waterfall

            body += f"<details><summary>trace</summary>{waterfall.render(self.trace)['text/html']}</details>"
        plain = f"{preview(self.output, 10_000)}\n\n{html.text_table(cols, rows)}\n[{self.summary()}]"
        return {"text/plain": plain, "text/html": html.box(f"chain {self.chain}", body, self.summary())}


class ChainStepError(CellopsError):
    """A step raised; the chain stopped there. ``.run`` holds the partial ChainRun; the step's
    span holds the traceback (``__cause__`` is the original exception)."""

    def __init__(self, message: str, run: ChainRun) -> None:
        super().__init__(message)
        self.run = run
