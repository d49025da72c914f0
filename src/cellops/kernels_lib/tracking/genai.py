"""Span attributes and children shared by every call path (calls.py, rag, compare, chains).

Model calls carry the OpenTelemetry GenAI semantic conventions (``gen_ai.*``) plus
OpenInference's ``input.value`` / ``output.value``; guard rails get one child span per check,
timed by the guard itself (``Finding.latency_ms``) and laid out in the order the checks ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .trace import Span, Trace

MAX_TEXT = 4000  # characters of input/output kept on a span


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"... [{len(text) - MAX_TEXT} more chars]"


def llm_request(model: str, params: Any, messages: list[dict[str, str]]) -> dict[str, Any]:
    """Attributes known before the call: model, sampling parameters, what the model is sent."""
    return {
        "gen_ai.operation.name": "chat", "gen_ai.system": model.split(":", 1)[0] if ":" in model else "cellops",
        "gen_ai.request.model": model, "gen_ai.request.temperature": float(params.temperature),
        "gen_ai.request.top_p": float(params.top_p), "gen_ai.request.max_tokens": int(params.max_tokens),
        **({"gen_ai.request.seed": int(params.seed)} if params.seed is not None else {}),
        "input.value": clip("\n\n".join(f"[{m['role']}] {m['content']}" for m in messages)),
    }


def llm_response(span: Span, gen: Any) -> None:
    """Attributes and events known after the call (tokens, finish reason, a response-cache hit)."""
    span.attrs |= {
        "gen_ai.usage.input_tokens": int(gen.prompt_tokens),
        "gen_ai.usage.output_tokens": int(gen.completion_tokens),
        "gen_ai.response.finish_reasons": [str(gen.finish_reason)],
        "output.value": clip(gen.text),
    }
    if gen.ttft_s is not None:
        span.attrs["cellops.ttft_s"] = round(float(gen.ttft_s), 6)
    if gen.meta.get("cached"):
        span.add_event("cache.hit", **{"cache.key": str(gen.meta.get("cache_key", ""))})


def guard_rail(trace: Trace, rail: str, policy: Any, run: Callable[[], Any], **attrs: Any) -> Any:
    """Run one rail (``run()`` returns a report or a list of them) inside a ``guard`` span."""
    with trace.span(f"guard.{rail}", kind="guard", **{"guard.rail": rail,
                                                     "guard.policy": str(getattr(policy, "ref", "?"))},
                    **attrs) as span:
        result = run()
        reports = result if isinstance(result, list) else [result]
        # The guard times each check; laid end to end they never outlast the rail itself.
        total = sum(_total_s(r) for r in reports)
        scale = min(1.0, (time.time() - span.start) / total) if total > 0 else 1.0
        if len(reports) == 1:
            _checks(trace, span, reports[0], span.start, scale)
        else:  # retrieval: a span per chunk, its checks under it
            t = span.start
            for i, rep in enumerate(reports):
                dur = _total_s(rep) * scale
                chunk = trace.add_span(f"chunk {i + 1}", "guard", t, t + dur, parent=span,
                                       **{"guard.allowed": bool(rep.allowed)})
                _checks(trace, chunk, rep, t, scale)
                t += dur
        allowed = all(bool(r.allowed) for r in reports)
        span.attrs["guard.allowed"] = allowed
        span.add_event("guard.verdict", allowed=allowed,
                       triggered=[f.check for r in reports for f in getattr(r, "triggered", [])],
                       reason=next((str(getattr(r, "reason", "")) for r in reports if not r.allowed), ""))
    return result


def _total_s(rep: Any) -> float:
    lat = getattr(rep, "latency_ms", {}) or {}
    return sum(float(v or 0.0) for v in lat.values()) / 1000


def _checks(trace: Trace, parent: Span, rep: Any, t: float, scale: float) -> None:
    embed_ms = float((getattr(rep, "latency_ms", {}) or {}).get("embed", 0.0) or 0.0)
    if embed_ms:
        trace.add_span("embed", "embedding", t, t + embed_ms * scale / 1000, parent=parent,
                       **{"cellops.ms": round(embed_ms, 3)})
        t += embed_ms * scale / 1000
    for f in getattr(rep, "findings", []):
        end = t + float(f.latency_ms or 0.0) * scale / 1000
        verdict = {"triggered": bool(f.triggered), "blocking": bool(f.blocking), "score": float(f.score),
                   "action": f.action}
        trace.add_span(f"check {f.check}", "guard", t, end, parent=parent,
                       status="error" if f.error else "ok", events=[("guard.verdict", verdict)],
                       **{"guard.check": f.check, "guard.action": f.action, "guard.score": float(f.score),
                          "guard.triggered": bool(f.triggered), "guard.label": f.label,
                          "guard.reason": f.reason, "cellops.ms": round(float(f.latency_ms or 0.0), 3),
                          **({"error": f.error} if f.error else {})})
        t = end
