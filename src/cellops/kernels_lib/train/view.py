"""Static views of a run (text/plain + text/html with an inline SVG loss curve): what papermill
outputs, nbconvert HTML and ``%finetune status`` show. The live widget reuses ``svg_curves``."""

from __future__ import annotations

from html import escape
from typing import Any

from .. import html

Point = tuple[float, float]


def _fmt(v: Any, nd: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def eta_text(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def svg_curves(train: list[Point], evals: list[Point], width: int = 420, height: int = 160) -> str:
    """Train loss (line) and eval loss (dots) against step, in one small inline SVG."""
    pts = [p for p in train + evals if p[1] is not None]
    if not pts:
        return "<svg width='0' height='0'></svg>"
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1e-6
    pad = 30

    def xy(p: Point) -> str:
        x = pad + (p[0] - x0) / (x1 - x0) * (width - 2 * pad)
        y = height - pad + (p[1] - y0) / (y1 - y0) * -(height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(p) for p in train if p[1] is not None)
    dots = "".join(f"<circle cx='{xy(p).split(',')[0]}' cy='{xy(p).split(',')[1]}' r='3.5' fill='#cf222e'/>"
                   for p in evals if p[1] is not None)
    return (
        f"<svg width='{width}' height='{height}' style='background:#fff'>"
        f"<polyline fill='none' stroke='#0969da' stroke-width='1.5' points='{line}'/>{dots}"
        f"<text x='{pad}' y='14' font-size='11'>loss {y1:.3f}</text>"
        f"<text x='{pad}' y='{height - 8}' font-size='11'>{y0:.3f} · step {int(x0)}–{int(x1)}"
        " · <tspan fill='#0969da'>train</tspan> <tspan fill='#cf222e'>eval</tspan></text></svg>"
    )


def progress_line(m: dict[str, Any]) -> str:
    step, total = m.get("step") or 0, m.get("max_steps")
    tps = m.get("tokens_per_s")
    return (f"step {step}/{total or '?'}  loss {_fmt(m.get('loss'))}  "
            f"tokens/s {_fmt(tps, 0) if tps else '-'}  ETA {eta_text(m.get('eta_s'))}")


def margin_line(m: dict[str, Any]) -> str:
    return (f"held-out margin log p(chosen) - log p(rejected): base {_fmt(m.get('eval_margin_before'), 2)}"
            f"  tuned {_fmt(m.get('eval_margin_after'), 2)}")


def summary_text(job: Any) -> str:
    m = job.metrics
    p = job.plan
    lines = [f"finetune {job.name}  run {job.run_id}  {m['status']}", p["reason"], progress_line(m),
             f"eval loss before {_fmt(m.get('eval_loss_before'))}  after {_fmt(m.get('eval_loss_after'))}"]
    if m.get("eval_margin_before") is not None:
        lines.append(margin_line(m))
    lines += [f"note: {n}" for n in p.get("notes", [])]
    if job.model:
        lines.append(f"model: {job.model}  (use --model {job.model})")
    if job.error:
        lines.append(f"error: {job.error}")
    for s in job.samples:
        lines.append(f"- {s['messages'][-1]['content'][:60]!r}\n    before: {s['before'][:80]!r}\n    after:  {s['after'][:80]!r}")
    return "\n".join(lines)


def samples_table(samples: list[dict[str, Any]]) -> str:
    rows = [(s["messages"][-1]["content"], s["reference"], s["before"], s["after"]) for s in samples]
    return html.table(("held-out prompt", "reference", "before", "after"), rows) if rows else ""


def summary_html(job: Any) -> str:
    m = job.metrics
    p = job.plan
    state_cls = {"done": "ok", "failed": "bad"}.get(m["status"], "muted")
    total = m.get("max_steps") or 0
    pct = int(100 * (m.get("step") or 0) / total) if total else 0
    body = (
        f"<div class='{state_cls}'>{escape(m['status'])}</div>"
        f"<div class='muted'>{escape(p['reason'])}</div>"
        f"<progress value='{pct}' max='100' style='width:420px'></progress>"
        f"<pre>{escape(progress_line(m))}</pre>"
        + svg_curves(m["losses"], m["eval_losses"])
        + html.table(("eval loss before", "eval loss after", "train loss", "model"),
                     [(_fmt(m.get("eval_loss_before")), _fmt(m.get("eval_loss_after")),
                       _fmt(m.get("train_loss")), job.model or "-")])
        + (f"<div>{escape(margin_line(m))}</div>" if m.get("eval_margin_before") is not None else "")
        + "".join(f"<div class='muted'>note: {escape(n)}</div>" for n in p.get("notes", []))
        + (f"<div class='bad'>{escape(job.error)}</div>" if job.error else "")
        + samples_table(job.samples)
    )
    return html.box(f"finetune {job.name}", body, meta=f"run {job.run_id}")
