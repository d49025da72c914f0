"""``report(run_ids)``: one self-contained HTML file comparing runs.

Metrics table, one inline SVG chart per metric over the runs (no scripts, no network), parameter
and version differences, package changes, errors, and links to each executed notebook and its
HTML copy. The comparison table is also logged to the active tracker (W&B by default: online
when the user is logged in, else offline files for ``wandb sync``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from .. import html
from ..artifacts import write_atomic
from ..errors import InvalidInputError
from ..records import RunRecord
from ..workspace import Workspace, get_workspace

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


@dataclass
class Report:
    path: Path
    run_ids: list[str]
    metrics: dict[str, dict[str, float]]  # metric -> run id -> value
    tracker_run_id: str | None = None  # the active tracker's run the table was logged to
    body: str = field(default="", repr=False)

    def __str__(self) -> str:
        names = ", ".join(self.metrics) or "no metrics"
        return f"report on {len(self.run_ids)} runs ({names}): {self.path}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": str(self), "text/html": self.body}


def _load(ws: Workspace, run_ids: list[str]) -> list[dict[str, Any]]:
    if not run_ids:
        raise InvalidInputError("give at least one run id (`cellops runs` lists them)")
    runs = list({r["id"]: r for r in (ws.get_run(i) for i in run_ids)}.values())  # once each
    return sorted(runs, key=lambda r: r["record"].get("started_at", r["created_at"]))


def _label(run: dict[str, Any]) -> str:
    return run["id"][:8]


def svg_chart(title: str, labels: list[str], values: list[float | None], width: int = 420,
              height: int = 220) -> str:
    """A small line chart with labelled points, as inline SVG."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    left, right, top, bottom = 56, 32, 28, 46
    pw, ph = width - left - right, height - top - bottom
    lo, hi = (min(v for _, v in pts), max(v for _, v in pts)) if pts else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 1), hi + (abs(hi) * 0.1 or 1)
    n = max(len(values) - 1, 1)
    x = lambda i: left + (pw * i / n if len(values) > 1 else pw / 2)  # noqa: E731
    y = lambda v: top + ph - (v - lo) / (hi - lo) * ph  # noqa: E731
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"role='img' aria-label='{escape(title)}' style='background:#fff;border:1px solid #ddd'>",
             f"<text x='{left}' y='18' font-size='13' font-weight='bold'>{escape(title)}</text>",
             f"<line x1='{left}' y1='{top + ph}' x2='{left + pw}' y2='{top + ph}' stroke='#999'/>",
             f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + ph}' stroke='#999'/>"]
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f"<text x='{left - 6}' y='{y(v) + 4:.1f}' font-size='10' text-anchor='end'>{v:.4g}</text>"
                     f"<line x1='{left}' y1='{y(v):.1f}' x2='{left + pw}' y2='{y(v):.1f}' stroke='#eee'/>")
    for i, lab in enumerate(labels):
        parts.append(f"<text x='{x(i):.1f}' y='{top + ph + 16}' font-size='10' text-anchor='middle'>"
                     f"{escape(lab)}</text>")
    if len(pts) > 1:
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in pts)
        parts.append(f"<polyline points='{path}' fill='none' stroke='{PALETTE[0]}' stroke-width='2'/>")
    for i, v in pts:
        parts.append(f"<circle cx='{x(i):.1f}' cy='{y(v):.1f}' r='4' fill='{PALETTE[0]}'>"
                     f"<title>{escape(labels[i])}: {v:.6g}</title></circle>"
                     f"<text x='{x(i):.1f}' y='{y(v) - 8:.1f}' font-size='10' text-anchor='middle'>{v:.4g}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _diff_rows(runs: list[dict[str, Any]], key: str) -> tuple[list[tuple[Any, ...]], list[str]]:
    """(rows of names whose values differ across runs, names that are the same everywhere)."""
    names = sorted({k for r in runs for k in (r["record"].get(key) or {})})
    differ, same = [], []
    for name in names:
        vals = [_short(json.dumps((r["record"].get(key) or {}).get(name), default=str)) for r in runs]
        (differ.append((name, *vals)) if len(set(vals)) > 1 else same.append(f"{name}={vals[0]}"))
    return differ, same


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _link(path: str | None, label: str) -> str:
    if not path:
        return ""
    return f"<a href='{escape(Path(path).resolve().as_uri())}'>{escape(label)}</a>"


def build_html(runs: list[dict[str, Any]], metrics: dict[str, dict[str, float]]) -> str:
    labels = [_label(r) for r in runs]
    run_rows = []
    typed = [RunRecord.from_row(r) for r in runs]
    for t in typed:
        started = datetime.fromtimestamp(getattr(t, "started_at", None) or t.created_at).strftime("%Y-%m-%d %H:%M")
        error = t.extra.get("error")
        err = (error.get("message") or "") if isinstance(error, dict) else ""
        cls = "ok" if t.status == "ok" else "bad"
        run_rows.append((escape(t.id), escape(t.name or ""), f"<span class='{cls}'>{escape(t.status)}</span>",
                         started, f"{getattr(t, 'duration_s', None) or 0:.1f}s",
                         _link(getattr(t, "output_html", None), "html") + " "
                         + _link(getattr(t, "output_notebook", None), "ipynb"), escape(err[:160])))
    sections = [f"<h2>Runs</h2>{html.table(('run', 'name', 'status', 'started', 'duration', 'outputs', 'error'), run_rows, raw=True)}"]
    if metrics:
        rows = [(m, *(f"{metrics[m][r['id']]:.6g}" if r["id"] in metrics[m] else "–" for r in runs))
                for m in metrics]
        charts = "".join(svg_chart(m, labels, [metrics[m].get(r["id"]) for r in runs]) for m in metrics)
        sections.append(f"<h2>Metrics</h2>{html.table(('metric', *labels), rows)}"
                        f"<div style='display:flex;flex-wrap:wrap;gap:12px;margin-top:12px'>{charts}</div>")
    else:
        sections.append("<h2>Metrics</h2><p class='muted'>No metrics recorded "
                        "(record them in a notebook with cellops.pipelines.record(name=value)).</p>")
    for key, title in (("params", "Parameters"), ("touched", "Versions touched")):
        differ, same = _diff_rows(runs, key)
        body = html.table((key[:-1] if key == "params" else "kind", *labels), differ) if differ else \
            "<p class='muted'>identical in every run</p>"
        if same:
            body += f"<p class='muted'>same everywhere: {escape(', '.join(same))[:2000]}</p>"
        sections.append(f"<h2>{title}</h2>{body}")
    packages = [dict(t.env.packages) if t.env else {} for t in typed]
    pkgs = [(name, *(p.get(name, "–") for p in packages)) for name in sorted({k for p in packages for k in p})]
    pkgs = [p for p in pkgs if len(set(p[1:])) > 1]
    if pkgs:
        sections.append(f"<h2>Package changes</h2>{html.table(('package', *labels), pkgs)}")
    generated = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return (f"{html.STYLE}<div class='cellops'><h1>cellops run report</h1>"
            f"<p class='muted'>{len(runs)} runs · generated {generated}</p>{''.join(sections)}</div>")


def _metrics(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for r in runs:
        for k, v in (r["record"].get("metrics") or {}).items():
            out.setdefault(k, {})[r["id"]] = float(v)
    return dict(sorted(out.items()))


def report(run_ids: list[str], *, html_path: str | Path | None = None,
           workspace: Workspace | None = None) -> Report:
    """Compare runs in a self-contained HTML file (and a table in the active tracker when it is on)."""
    ws = workspace or get_workspace()
    runs = _load(ws, list(run_ids))
    metrics = _metrics(runs)
    body = build_html(runs, metrics)
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>cellops run report</title>"
            "<style>body{margin:24px}h2{margin-top:28px}</style></head><body>" + body + "</body></html>")
    path = Path(html_path) if html_path else _new_report_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, page)  # a given --html path is replaced whole, never rewritten in place
    return Report(path.resolve(), [r["id"] for r in runs], metrics, _log_tracker(ws, runs, metrics, path), body)


def _new_report_path(ws: Workspace) -> Path:
    """A name no other report takes, also one made in the same second by another process."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return ws.artifacts / "reports" / f"report-{stamp}-{uuid.uuid4().hex[:8]}.html"


def _log_tracker(ws: Workspace, runs: list[dict[str, Any]], metrics: dict[str, dict[str, float]],
                 path: Path) -> str | None:
    from ..tracking import tracker

    run_id = tracker.start(ws.root, job_type="report")
    if run_id:
        cols = ["run", "name", "status", *metrics]
        rows = [[r["id"], r["name"], r["status"], *(metrics[m].get(r["id"]) for m in metrics)] for r in runs]
        tracker.log({"report/html_path": str(path)}, tables={"report/runs": (cols, rows)})
    return run_id
