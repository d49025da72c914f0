"""The one guarded model call that %%prompt, %%rag and the compare grid all go through.

input rails -> generate (streamed; output rails watch the stream) -> output rails.
The guard policy is duck-typed here so this module does not depend on the guard package:
``check_input(text)`` and ``check_output(text, context)`` return a report with ``.allowed`` and
``.text``; the optional ``stream_checker(context)`` returns an object whose ``feed(piece)``
returns a blocking report as soon as the partial output violates a ``block`` check, and whose
``release(final)`` returns the text that may be shown so far (held back and redacted when the
output rail redacts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .models.base import LLM, Generation, GenParams, Message, OnToken
from .tracking import genai
from .tracking.trace import Trace


class _StreamBlocked(Exception):
    def __init__(self, report: Any) -> None:
        self.report = report


@dataclass
class CallResult:
    text: str
    generation: Generation | None
    messages: list[Message]  # what the model was sent (after input redaction)
    blocked: str | None = None  # "input" | "output" | None
    reports: dict[str, Any] = field(default_factory=dict)  # rail -> guard report


def _blocked_text(policy: Any, rail: str, report: Any) -> str:
    reason = getattr(report, "reason", "") or "policy violation"
    return f"[blocked by guard policy {getattr(policy, 'ref', '?')} ({rail}): {reason}]"


def _redact_messages(messages: list[Message], text_in: str, rep: Any) -> list[Message]:
    """Apply the input rail's redaction to the user messages.

    The checked text is the user messages joined (or the caller's ``input_text``), so a plain
    replace only works for a single message that contains it verbatim; otherwise each redacted
    value is replaced by its placeholder wherever it occurs.
    """
    if any(m["role"] == "user" and text_in in m["content"] for m in messages):
        return [{**m, "content": m["content"].replace(text_in, rep.text)} if m["role"] == "user" else m
                for m in messages]
    placeholders = getattr(rep, "placeholders", {}) or {}
    out = []
    for m in messages:
        content = m["content"]
        if m["role"] == "user":
            for ph, original in sorted(placeholders.items(), key=lambda kv: -len(kv[1])):
                content = content.replace(original, ph)
        out.append({**m, "content": content})
    return out


def guarded_generate(
    llm: LLM, messages: list[Message], params: GenParams, *, trace: Trace,
    on_token: OnToken | None = None, policy: Any = None, context: list[str] | None = None,
    input_text: str | None = None,
) -> CallResult:
    """Run one model call under ``policy`` (None: no guard). Never raises for a guard verdict."""
    reports: dict[str, Any] = {}
    if policy is not None:
        text_in = input_text if input_text is not None else "\n".join(
            m["content"] for m in messages if m["role"] == "user")
        rep = genai.guard_rail(trace, "input", policy, lambda: policy.check_input(text_in))
        reports["input"] = rep
        if rep.text != text_in:  # redacted: the model sees (and the record keeps) the redacted text
            messages = _redact_messages(messages, text_in, rep)
        if not rep.allowed:
            return CallResult(_blocked_text(policy, "input", rep), None, messages, "input", reports)

    checker = policy.stream_checker(context) if policy is not None and hasattr(policy, "stream_checker") else None
    parts: list[str] = []

    def sink(piece: str) -> None:
        parts.append(piece)
        if checker is not None:
            verdict = checker.feed(piece)
            if verdict is not None and not verdict.allowed:
                raise _StreamBlocked(verdict)
            piece = checker.release()
        if on_token is not None and piece:
            on_token(piece)

    t0 = time.perf_counter()
    with trace.span("generate", kind="llm", **genai.llm_request(llm.uri, params, messages)) as span:
        try:
            gen = llm.generate(messages, params, sink)
        except _StreamBlocked as sb:
            reports["output"] = sb.report
            gen = Generation("".join(parts), llm.uri, 0, len(parts), time.perf_counter() - t0,
                             finish_reason="guard")
            span.attrs["cellops.blocked"] = "output"
            genai.llm_response(span, gen)
            return CallResult(_blocked_text(policy, "output", sb.report), gen, messages, "output", reports)
        genai.llm_response(span, gen)

    text = gen.text
    if policy is not None:
        rep = genai.guard_rail(trace, "output", policy, lambda: policy.check_output(text, context=context))
        reports["output"] = rep
        if not rep.allowed:
            return CallResult(_blocked_text(policy, "output", rep), gen, messages, "output", reports)
        text = rep.text
        rest = checker.release(final=True) if checker is not None else ""
        if on_token is not None and rest:
            on_token(rest)  # the held-back tail, now that the whole answer passed
    return CallResult(text, gen, messages, None, reports)
