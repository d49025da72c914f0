"""``diff(a, b)``: two traces side by side, step by step.

Steps are matched by their path of names from the root (``retrieve/embed query``), the n-th
repeat of a name counting as its own step, so two runs of one chain or prompt line up even
though every id differs. For each step: in A, in B or both; status; latency and token deltas;
whether its output changed (a unified diff of ``output.value``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from html import escape
from typing import Any

from .. import html
from ..workspace import Workspace, get_workspace
from .traces import StoredTrace, get
from .waterfall import tree

_TOK = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")


@dataclass
class StepDiff:
    path: str
    a: Any | None  # the span in A (None: only in B)
    b: Any | None
    output_diff: list[str] = field(default_factory=list)

    @property
    def change(self) -> str:
        if self.a is None:
            return "added"
        if self.b is None:
            return "removed"
        if self.a.status != self.b.status:
            return "status"
        return "output" if self.output_diff else ""

    @property
    def ms_delta(self) -> float | None:
        return None if self.a is None or self.b is None else (self.b.duration_s - self.a.duration_s) * 1000

    def tokens(self, span: Any | None) -> int | None:
        if span is None or not any(k in span.attrs for k in _TOK):
            return None
        return sum(int(span.attrs.get(k, 0) or 0) for k in _TOK)


def _paths(t: StoredTrace) -> dict[str, Any]:
    """Step path -> span; the root is "" (two roots always line up, whatever their names)."""
    root = t.root
    out: dict[str, Any] = {"": root}
    names: dict[str, str] = {root.span_id: ""}
    for s, _depth in tree(t.spans):
        if s is root:
            continue
        parent = names.get(s.parent_id or "", "")
        base = f"{parent}/{s.name}" if parent else s.name
        path, n = base, 2
        while path in out:  # the second "generate" under one parent is its own step
            path, n = f"{base} #{n}", n + 1
        out[path] = s
        names[s.span_id] = path
    return out


def _output_diff(a: Any, b: Any) -> list[str]:
    oa, ob = str(a.attrs.get("output.value", "")), str(b.attrs.get("output.value", ""))
    if oa == ob:
        return []
    return list(difflib.unified_diff(oa.splitlines(), ob.splitlines(), "A", "B", lineterm="", n=1))[:60]


@dataclass
class TraceDiff:
    a: StoredTrace
    b: StoredTrace
    steps: list[StepDiff]

    @property
    def changed(self) -> list[StepDiff]:
        return [s for s in self.steps if s.change]

    def _rows(self) -> list[tuple[str, ...]]:
        rows = []
        for s in self.steps:
            ma = f"{s.a.duration_s * 1000:.1f}" if s.a else "-"
            mb = f"{s.b.duration_s * 1000:.1f}" if s.b else "-"
            d = f"{s.ms_delta:+.1f}" if s.ms_delta is not None else ""
            ta, tb = s.tokens(s.a), s.tokens(s.b)
            tok = f"{ta if ta is not None else '-'} -> {tb if tb is not None else '-'}" if ta or tb else ""
            st = s.a.status if s.a else "-"
            st += "" if s.b is None or s.a is None or s.b.status == s.a.status else f" -> {s.b.status}"
            rows.append((s.path, st, ma, mb, d, tok, s.change))
        return rows

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cols = ("step", "status", "A ms", "B ms", "delta ms", "tokens", "changed")
        rows = self._rows()
        head = (f"A {self.a.trace_id[:12]} {self.a.name} · B {self.b.trace_id[:12]} {self.b.name} · "
                f"{len(self.changed)} of {len(self.steps)} steps changed")
        text = [head, html.text_table(cols, rows)]
        body = html.table(cols, rows)
        for s in self.steps:
            if s.output_diff:
                text += [f"\n{s.path}: output", *s.output_diff]
                body += (f"<details open><summary>{escape(s.path)}: output changed</summary>"
                         f"{html.pre(chr(10).join(s.output_diff))}</details>")
        return {"text/plain": "\n".join(text), "text/html": html.box("trace diff", body, head)}


def diff(a: str, b: str, workspace: Workspace | None = None) -> TraceDiff:
    """Compare traces ``a`` and ``b`` (ids, prefixes or run ids)."""
    ws = workspace or get_workspace()
    ta, tb = get(a, ws), get(b, ws)
    pa, pb = _paths(ta), _paths(tb)
    order = list(pa) + [p for p in pb if p not in pa]
    steps = [StepDiff(path or f"(root) {ta.name}", pa.get(path), pb.get(path),
                      _output_diff(pa[path], pb[path]) if path in pa and path in pb else [])
             for path in order]
    return TraceDiff(ta, tb, steps)
