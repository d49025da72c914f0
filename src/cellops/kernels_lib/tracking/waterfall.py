"""The static trace waterfall: nested timed bars coloured by kind, a <details> per span with its
inputs, outputs, attributes, events and errors. Plain HTML and CSS (no script), so it survives
papermill, nbconvert and GitHub; every value is escaped."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .. import html

COLORS = {"chain": "#8250df", "llm": "#0969da", "retriever": "#1a7f37", "embedding": "#bf8700",
          "guard": "#cf222e", "tool": "#bc4c00", "reranker": "#1b7c83", "step": "#6e7781"}
_IO = ("input.value", "output.value")
MAX_ROWS = 400  # a 100-case grid has thousands of spans: show the first ones, say how many more
_CSS = ("<style>.cellops .wf-row summary{display:flex;align-items:center;gap:6px;cursor:pointer;"
        "list-style:none}.cellops .wf-name{width:260px;flex:none;overflow:hidden;text-overflow:ellipsis;"
        "white-space:nowrap}.cellops .wf-track{position:relative;flex:1;height:12px;background:#f6f8fa;"
        "min-width:200px}.cellops .wf-bar{position:absolute;top:1px;height:10px;border-radius:2px;"
        "min-width:2px}.cellops .wf-ms{width:80px;flex:none;text-align:right}.cellops .wf-kind{"
        "font-size:11px;color:#fff;border-radius:3px;padding:0 4px}.cellops .wf-body{margin:2px 0 6px "
        "24px}.cellops .wf-err{color:#cf222e}</style>")


def tree(spans: list[Any]) -> list[tuple[Any, int]]:
    """(span, depth) in display order: each span followed by its children by start time."""
    ids = {s.span_id for s in spans}
    kids: dict[str | None, list[Any]] = {}
    for s in spans:
        kids.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
    out: list[tuple[Any, int]] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(kids.get(parent, []), key=lambda x: x.start):
            out.append((s, depth))
            walk(s.span_id, depth + 1)

    walk(None, 0)
    return out


def _ms(s: Any) -> float:
    return s.duration_s * 1000.0


def _details(s: Any) -> str:
    parts = []
    for key in _IO:
        if key in s.attrs:
            parts.append(f"<b>{key.split('.')[0]}</b>{html.pre(str(s.attrs[key]))}")
    rows = [(k, v if isinstance(v, str) else json.dumps(v, default=str))
            for k, v in s.attrs.items() if k not in _IO]
    rows += [("span", f"{s.span_id} · parent {s.parent_id or '-'} · {s.status}")]
    parts.append(html.table(("attribute", "value"), rows))
    for e in s.events:
        cls = " class='wf-err'" if e["name"] == "exception" else ""
        trace = e["attributes"].get("exception.stacktrace")
        body = html.pre(trace) if trace else escape(json.dumps(e["attributes"], default=str))
        parts.append(f"<div{cls}><b>event {escape(e['name'])}</b> {body}</div>")
    return f"<div class='wf-body'>{''.join(parts)}</div>"


def _row(s: Any, depth: int, t0: float, total: float) -> str:
    left = 100.0 * (s.start - t0) / total
    width = max(0.2, 100.0 * s.duration_s / total)
    color = COLORS.get(s.kind, "#6e7781")
    err = " wf-err" if s.status == "error" else ""
    return (f"<details class='wf-row'><summary><span class='wf-name{err}' style='padding-left:{depth * 14}px'>"
            f"{escape(s.name)}</span><span class='wf-kind' style='background:{color}'>{escape(s.kind)}</span>"
            f"<span class='wf-track'><span class='wf-bar' style='left:{left:.2f}%;width:{min(width, 100 - left):.2f}%;"
            f"background:{color}'></span></span><span class='wf-ms muted'>{_ms(s):.1f} ms</span></summary>"
            f"{_details(s)}</details>")


def _more(n: int) -> str:
    return f"... {n - MAX_ROWS} more spans: cellops.traces.get(ID).spans has them all"


def text(trace: Any) -> str:
    lines = [f"trace {trace.trace_id}"]
    rows = tree(trace.spans)
    for s, depth in rows[:MAX_ROWS]:
        mark = "" if s.status == "ok" else f"  [{s.status}]"
        tokens = ""
        if "gen_ai.usage.output_tokens" in s.attrs:
            tokens = f"  {s.attrs.get('gen_ai.usage.input_tokens', 0)}+{s.attrs['gen_ai.usage.output_tokens']} tokens"
        lines.append(f"{'  ' * (depth + 1)}{s.name} ({s.kind})  {_ms(s):.1f} ms{tokens}{mark}")
    if len(rows) > MAX_ROWS:
        lines.append(_more(len(rows)))
    return "\n".join(lines)


def render(trace: Any) -> dict[str, str]:
    """text/plain + text/html of a trace (a live Trace or a StoredTrace)."""
    spans = list(trace.spans)
    if not spans:
        return {"text/plain": f"trace {trace.trace_id} (no spans)",
                "text/html": html.box("trace", "<p>no spans</p>", trace.trace_id)}
    t0 = min(s.start for s in spans)
    t1 = max(s.start + s.duration_s for s in spans)
    total = max(t1 - t0, 1e-6)
    ordered = tree(spans)
    rows = "".join(_row(s, d, t0, total) for s, d in ordered[:MAX_ROWS])
    if len(ordered) > MAX_ROWS:
        rows += f"<p class='muted'>{escape(_more(len(ordered)))}</p>"
    meta = f"{trace.trace_id} · {len(spans)} spans · {total * 1000:.1f} ms"
    return {"text/plain": text(trace), "text/html": html.box(f"trace: {ordered[0][0].name}", _CSS + rows, meta)}


def details(trace: Any) -> str:
    """The waterfall folded under a call's own output (a result's text/html)."""
    if trace is None or not trace.spans:
        return ""
    spans = list(trace.spans)
    return (f"<details><summary>trace {escape(trace.trace_id[:12])} · {len(spans)} spans</summary>"
            f"{render(trace)['text/html']}</details>")
