"""The compare grid's result: rows = cases, columns = prompt version x model.

Static views only (text/plain + text/html survive papermill, nbconvert and GitHub); the live
ipywidgets grid lives in ``cellops.widgets.compare_grid`` and renders the same cells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from typing import Any

from .. import html
from .assertions import Check
from .cache import CacheStats
from .cases import Case
from .store import Prompt


@dataclass
class Column:
    requested: str  # as written: "qa@prod"
    prompt: Prompt
    model: str  # resolved model URI

    @property
    def label(self) -> str:
        ref = self.prompt.ref
        alias = self.requested.partition("@")[2]
        shown = f"{self.requested} ({ref})" if alias and not alias.isdigit() and alias != ref else ref
        return f"{shown} · {self.model}"


@dataclass
class Cell:
    case: int  # 0-based row
    column: int  # 0-based column
    messages: list[dict[str, str]]
    output: str | None = None
    error: str | None = None  # the model failed on this case; the rest of the grid goes on
    latency_s: float | None = None  # model latency (the original one when served from the cache)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    blocked: str | None = None
    checks: list[Check] | None = None  # None: the case has no assertions
    start_s: float = 0.0  # when the call started, seconds after the grid started
    wall_s: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.case}:{self.column}"

    @property
    def passed(self) -> bool | None:
        if self.checks is None:
            return None
        return self.error is None and all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "column": self.column, "output": self.output, "error": self.error,
                "latency_s": self.latency_s, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cached": self.cached,
                "blocked": self.blocked, "messages": self.messages, "passed": self.passed,
                "start_s": self.start_s, "wall_s": self.wall_s,
                "checks": [c.to_dict() for c in self.checks] if self.checks is not None else None}

    def meta(self) -> str:
        if self.error is not None:
            return "error"
        lat = f"{self.latency_s:.2f}s" if self.latency_s is not None else "-"
        return f"{lat} · {self.completion_tokens} tok" + (" · cached" if self.cached else "")

    def html(self) -> str:
        """One grid cell as HTML (shared by the static table and the live widget)."""
        if self.error is not None:
            return f"<span class='bad'><b>error</b>: {escape(self.error)}</span>"
        body = html.pre(self.output or "")
        body += f"<div class='muted'>{escape(self.meta())}</div>"
        for c in self.checks or []:
            mark = "<span class='ok'>✓</span>" if c.passed else "<span class='bad'>✗</span>"
            body += f"<div>{mark} {escape(c.label)} <span class='muted'>{escape(c.reason)}</span></div>"
        return body


@dataclass
class CompareResult:
    """The grid. ``to_frame()`` gives one DataFrame row per case."""

    columns: list[Column]
    cases: list[Case]
    cells: list[list[Cell]]  # [case][column]
    stats: CacheStats
    wall_s: float
    params: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    trace_id: str | None = None  # the grid's trace: one span per cell (tracking.traces)

    @property
    def errors(self) -> int:
        return sum(c.error is not None for row in self.cells for c in row)

    def cell(self, key: str) -> Cell:
        i, _, j = key.partition(":")
        return self.cells[int(i)][int(j)]

    def summary(self) -> str:
        n = len(self.cases) * len(self.columns)
        err = f" · {self.errors} errors" if self.errors else ""
        run = f" · run {self.run_id}" if self.run_id else ""
        return (f"{len(self.cases)} cases x {len(self.columns)} columns = {n} cells in "
                f"{self.wall_s:.1f}s · {self.stats}{err}{run}")

    def rows(self) -> Any:
        """(case, [cells]) pairs."""
        return zip(self.cases, self.cells, strict=True)

    def var_names(self) -> list[str]:
        names: dict[str, None] = {}
        for c in self.cases:
            names.update(dict.fromkeys(c.vars))
        return list(names)

    def to_frame(self) -> Any:
        import pandas as pd

        with_checks = any(c.checks is not None for row in self.cells for c in row)
        rows = []
        for case, row in self.rows():
            d: dict[str, Any] = {"case": case.number}
            d.update({k: case.vars.get(k) for k in self.var_names()})
            if any(c.description for c in self.cases):
                d["description"] = case.description
            for col, cell in zip(self.columns, row, strict=True):
                label = col.label
                d[label] = cell.output
                d[f"{label} latency_s"] = cell.latency_s
                d[f"{label} tokens"] = cell.completion_tokens
                d[f"{label} cached"] = cell.cached
                d[f"{label} error"] = cell.error
                if with_checks:
                    d[f"{label} passed"] = cell.passed
            rows.append(d)
        df = pd.DataFrame(rows)
        df.attrs.update({"run_id": self.run_id, "cache": self.stats.to_dict(), "wall_s": self.wall_s,
                         "columns": [c.label for c in self.columns]})
        return df

    def long_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per cell (for W&B tables)."""
        cols = ["case", "vars", "prompt", "model", "output", "error", "latency_s",
                "completion_tokens", "cached", "passed"]
        rows = [[case.number, json.dumps(case.vars, default=str)[:1000], col.prompt.ref, col.model,
                 cell.output, cell.error, cell.latency_s, cell.completion_tokens, cell.cached,
                 cell.passed]
                for case, row in self.rows()
                for col, cell in zip(self.columns, row, strict=True)]
        return cols, rows

    def html_table(self) -> str:
        names = self.var_names()
        head = ["#", *names, *(c.label for c in self.columns)]
        rows = [[str(case.number), *(html.pre(str(case.vars.get(k, ""))) for k in names),
                 *(cell.html() for cell in row)]
                for case, row in self.rows()]
        return html.table(head, rows, raw=True)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        head = ["#", *(c.label for c in self.columns)]
        rows = [[case.number, *(_plain(cell) for cell in row)] for case, row in self.rows()]
        return {"text/plain": html.text_table(head, rows) + "\n" + self.summary(),
                "text/html": html.box("prompt compare", self.html_table(), self.summary())}


def _plain(cell: Cell) -> str:
    if cell.error is not None:
        return f"ERROR {cell.error}"
    mark = {True: "✓ ", False: "✗ ", None: ""}[cell.passed]
    return mark + (cell.output or "").replace("\n", " ")
