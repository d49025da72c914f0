"""Dashboard figures of a served app, read back from the workspace (read-only).

Traffic, latency p50/p95, error and guard-block rates, tokens and feedback per variant; input and
output drift between a reference window (the first N requests, or a dataset version's inputs)
and the current window (the last N requests); the A/B comparison. ``figures(...)`` is plain JSON (what ``cellops monitor --json``
prints and alert rules read); :class:`Dashboard` renders it as text/plain and static HTML.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from html import escape
from typing import Any

from ..errors import InvalidInputError, NotFoundError
from ..serving import records
from ..workspace import Workspace, get_workspace
from . import stats


def _variant_figures(rows: list[dict[str, Any]], fb: dict[str, int]) -> dict[str, Any]:
    n = len(rows)
    answered = [r for r in rows if r["status"] in ("ok", "blocked")]
    lat = [r["latency_s"] for r in answered]
    ttft = [r["ttft_s"] for r in answered if r["ttft_s"] is not None]
    errors = sum(r["status"] in ("error", "timeout") for r in rows)
    blocked = sum(r["status"] == "blocked" for r in rows)
    ups, downs = sum(v == 1 for v in fb.values()), sum(v == -1 for v in fb.values())
    return {
        "requests": n, "answered": len(answered), "errors": errors, "blocked": blocked,
        "cancelled": sum(r["status"] == "cancelled" for r in rows),
        "error_rate": errors / n if n else None, "block_rate": blocked / n if n else None,
        "latency_p50_s": stats.percentile(lat, 50), "latency_p95_s": stats.percentile(lat, 95),
        "ttft_p50_s": stats.percentile(ttft, 50),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "feedback": {"up": ups, "down": downs, "neutral": sum(v == 0 for v in fb.values()),
                     "up_rate": ups / (ups + downs) if ups + downs else None},
    }


def _ratings(ws: Workspace, run_ids: list[str]) -> dict[str, int]:
    """run id -> rating (+1/-1/0) from the shared feedback store (prompt_feedback)."""
    out: dict[str, int] = {}
    with ws.db() as conn:
        for i in range(0, len(run_ids), 500):
            part = run_ids[i:i + 500]
            q = f"SELECT run_id, rating FROM prompt_feedback WHERE cell='' AND run_id IN ({','.join('?' * len(part))})"
            out |= {r[0]: r[1] for r in conn.execute(q, part)}
    return out


def _drift(ref: list[dict[str, Any]], cur: list[dict[str, Any]], embedder: str) -> dict[str, Any]:
    ref = [r for r in ref if r["status"] in ("ok", "blocked")]
    cur = [r for r in cur if r["status"] in ("ok", "blocked")]
    out: dict[str, Any] = {"reference": len(ref), "current": len(cur)}
    if min(len(ref), len(cur)) >= stats.MIN_WINDOW:
        from ..models import get_embedder

        vecs = get_embedder(embedder).encode([r["input"] for r in ref + cur])
        out["input"] = stats.embedding_drift(vecs[: len(ref)], vecs[len(ref):])
    else:
        out["input"] = stats.embedding_drift(_empty(), _empty())
    ref = [r for r in ref if "output" in r]  # a dataset reference has inputs only
    out["output_length"] = stats.length_drift([r["completion_tokens"] for r in ref],
                                              [r["completion_tokens"] for r in cur])
    out["refusal"] = stats.rate_drift([stats.refused(r["output"]) for r in ref],
                                      [stats.refused(r["output"]) for r in cur])
    if any("citations" in r["record"] for r in ref + cur):  # a RAG app: answers with sources
        out["groundedness"] = stats.rate_drift([bool(r["record"].get("citations")) for r in ref],
                                               [bool(r["record"].get("citations")) for r in cur])
    return out


_INPUT_KEYS = ("input", "question", "prompt", "query", "instruction", "text")


def _record_input(rec: Any) -> str | None:
    """The user's input in one dataset record: a string, a known field, or the last user message."""
    if isinstance(rec, str):
        return rec
    if not isinstance(rec, dict):
        return None
    for k in _INPUT_KEYS:
        if isinstance(rec.get(k), str):
            return rec[k]
    users = [m.get("content") for m in rec.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else None


def dataset_reference(ref: str, ws: Workspace) -> tuple[str, list[dict[str, Any]]]:
    """A dataset version (``NAME@V[:SPLIT]``) as the drift reference window: its inputs, shaped
    like answered requests (no outputs: output drift needs a request window)."""
    from ..datasets.store import get

    ds = get(ref, ws)
    texts = [t for t in (_record_input(r) for r in ds.records()) if t]
    if not texts:
        raise InvalidInputError(f"--reference {ref}: no record has an input text (a string, one of "
                                f"{', '.join(_INPUT_KEYS)}, or user messages)")
    return f"dataset {ds.ref} ({len(texts)} inputs)", [{"input": t, "status": "ok"} for t in texts]


def _empty() -> Any:
    import numpy as np

    return np.zeros((0, 1), dtype=np.float32)


def figures(app: str, since: float | None = None, reference: int | str = 50, window: int | None = None,
            embedder: str = "default", workspace: Workspace | None = None) -> dict[str, Any]:
    """Every dashboard figure of ``app`` as JSON; ``since`` (unix time) limits the current data.
    ``reference``: the first N requests, or a dataset version ``NAME@V[:SPLIT]`` (its inputs)."""
    ws = workspace or get_workspace()
    if isinstance(reference, int) and reference < 1:
        raise InvalidInputError("the reference window needs at least 1 request (--reference N or DATASET@V)")
    every = records.rows(ws, app)
    if not every:
        known = records.apps(ws)
        raise NotFoundError(f"no served requests for app '{app}'; apps with traffic: {', '.join(known) or '(none yet)'}")
    rows = [r for r in every if since is None or r["created_at"] >= since]
    ratings = _ratings(ws, [r["run_id"] for r in rows if r["run_id"]])
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    variants = {v: _variant_figures(rs, {r["run_id"]: ratings[r["run_id"]] for r in rs if r["run_id"] in ratings})
                | {"target": rs[-1]["target"]} for v, rs in sorted(by_variant.items())}
    if isinstance(reference, str):
        ref_label, ref = dataset_reference(reference, ws)
        after = rows
        cur_label = "last {} requests"
    else:
        ref, ref_label = every[:reference], f"first {min(reference, len(every))} requests"
        after = [r for r in every[reference:] if since is None or r["created_at"] >= since]
        cur_label = "last {} requests after it"
    cur = after[-(window or (reference if isinstance(reference, int) else 50)):]
    fb_v = {v: f["feedback"] for v, f in variants.items()}
    lat_v = {v: [r["latency_s"] for r in rs if r["status"] == "ok"] for v, rs in by_variant.items()}
    return {
        "app": app, "generated_at": time.time(), "since": since, "requests": len(rows),
        "first_at": rows[0]["created_at"] if rows else None, "last_at": rows[-1]["created_at"] if rows else None,
        "overall": _variant_figures(rows, {r["run_id"]: ratings[r["run_id"]] for r in rows if r["run_id"] in ratings}),
        "variants": variants,
        "drift": _drift(ref, cur, embedder) | {"reference_window": ref_label,
                                               "current_window": cur_label.format(len(cur))},
        "ab": stats.ab_compare({v: f["up"] for v, f in fb_v.items()}, {v: f["down"] for v, f in fb_v.items()}, lat_v)
        if len(variants) > 1 else None,
        "timeline": [(r["created_at"], r["variant"], r["latency_s"], r["status"]) for r in rows[-2000:]],
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


@dataclass
class Dashboard:
    data: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in self.data.items() if k != "timeline"}, indent=2, default=str)

    def _tables(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        d = self.data
        cols = ("variant", "target", "requests", "p50 s", "p95 s", "errors", "blocked", "tokens in/out", "👍/👎")
        rows = [(v, f["target"], f["requests"], _fmt(f["latency_p50_s"]), _fmt(f["latency_p95_s"]),
                 _fmt(f["error_rate"]), _fmt(f["block_rate"]), f"{f['prompt_tokens']}/{f['completion_tokens']}",
                 f"{f['feedback']['up']}/{f['feedback']['down']}") for v, f in d["variants"].items()]
        dr = d["drift"]
        drift = [(name, dr[key].get("test", ""), _fmt(dr[key].get("p_value")),
                  {True: "DRIFT", False: "ok", None: "not enough data"}[dr[key].get("drifted")])
                 for name, key in (("input embeddings", "input"), ("output length", "output_length"),
                                   ("refusal rate", "refusal"), ("groundedness", "groundedness")) if key in dr]
        return cols, rows, drift

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .. import html

        d = self.data
        cols, rows, drift = self._tables()
        dcols = ("drift", "test", "p-value", "verdict")
        window = f"{d['drift']['reference_window']} vs {d['drift']['current_window']}"
        ab = d["ab"]["verdict"] if d["ab"] else "one variant (serve with --b TARGET_B for an A/B test)"
        text = "\n\n".join([f"{d['app']}: {d['requests']} requests", html.text_table(cols, rows),
                            f"drift ({window})", html.text_table(dcols, drift), f"A/B: {ab}"])
        body = (html.table(cols, rows) + f"<p><b>drift</b> <span class='muted'>{escape(window)}</span></p>"
                + html.table(dcols, drift) + f"<p><b>A/B:</b> {escape(ab)}</p>" + _figure(d))
        return {"text/plain": text, "text/html": html.box(f"monitor: {d['app']}", body, f"{d['requests']} requests")}


def _figure(d: dict[str, Any]) -> str:
    """Latency over time per variant, as an inline PNG (static: survives papermill and nbconvert)."""
    if len(d["timeline"]) < 2:
        return ""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.2), dpi=90)
    t0 = d["timeline"][0][0]
    for v in sorted({x[1] for x in d["timeline"]}):
        pts = [(t - t0, lat) for t, var, lat, st in d["timeline"] if var == v and st in ("ok", "blocked")]
        if pts:
            ax.plot(*zip(*pts, strict=True), ".", label=f"variant {v}", alpha=0.7)
    ax.set_xlabel("seconds since first request")
    ax.set_ylabel("latency s")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f"<img alt='latency over time' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def monitor(app: str, since: float | None = None, reference: int | str = 50, window: int | None = None,
            workspace: Workspace | None = None) -> Dashboard:
    return Dashboard(figures(app, since, reference, window, workspace=workspace))
