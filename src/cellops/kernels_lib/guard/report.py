"""Guard verdicts and reports: what each check found, what the policy decided, and why.

A report is a plain value (``to_dict`` is JSON) that renders as static HTML with the matched spans
highlighted, so it survives papermill and nbconvert. Redaction placeholders are numbered per
value (``<EMAIL_ADDRESS_1>`` is always the same address within a report), so ``restore`` can put
the originals back into a model answer that echoes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from typing import Any

from .. import html


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label}


@dataclass
class Verdict:
    """What one check returns. ``triggered`` is the check's own decision against its threshold."""

    score: float
    triggered: bool
    label: str = ""
    spans: list[Span] = field(default_factory=list)
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Finding:
    """One check's verdict inside a report, with the action the policy attached to it."""

    check: str
    action: str
    score: float
    triggered: bool
    label: str = ""
    spans: list[Span] = field(default_factory=list)
    reason: str = ""
    latency_ms: float = 0.0
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.triggered and self.action == "block"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "action": self.action, "score": round(self.score, 4),
            "triggered": self.triggered, "label": self.label,
            "spans": [s.to_dict() for s in self.spans], "reason": self.reason,
            "latency_ms": round(self.latency_ms, 3), "error": self.error, "detail": self.detail,
        }


_PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d+)>")


@dataclass
class Report:
    """The outcome of one rail (input, retrieval or output) on one text."""

    rail: str
    policy: str
    original: str
    text: str  # after redaction
    findings: list[Finding] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)  # "<EMAIL_ADDRESS_1>" -> original
    latency_ms: dict[str, float] = field(default_factory=dict)  # per check, plus "embed"
    notes: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not any(f.blocking for f in self.findings)

    @property
    def triggered(self) -> list[Finding]:
        return [f for f in self.findings if f.triggered]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.triggered and f.action == "warn"]

    @property
    def redacted(self) -> bool:
        return self.text != self.original

    @property
    def total_ms(self) -> float:
        return sum(self.latency_ms.values())

    @property
    def reason(self) -> str:
        """One line: why the text was blocked, or what was flagged, or 'ok'."""
        blocking = [f for f in self.findings if f.blocking]
        shown = blocking or [f for f in self.findings if f.triggered and f.action != "log"]
        if not shown:
            return "ok"
        parts = [f"{f.check}{'/' + f.label if f.label else ''} ({f.score:.2f})" for f in shown]
        verb = "blocked" if blocking else "flagged"
        first = shown[0].reason
        return f"{verb}: {', '.join(parts)}" + (f": {first}" if first else "")

    def restore(self, text: str) -> str:
        """Put the redacted originals back into ``text`` (e.g. a model answer echoing placeholders)."""
        return _PLACEHOLDER.sub(lambda m: self.placeholders.get(m.group(0), m.group(0)), text)

    def to_dict(self) -> dict[str, Any]:
        # Placeholder originals are PII: the record keeps only which placeholders exist.
        return {
            "rail": self.rail, "policy": self.policy, "allowed": self.allowed,
            "reason": self.reason, "text": self.text, "redacted": self.redacted,
            "placeholders": sorted(self.placeholders),
            "findings": [f.to_dict() for f in self.findings],
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()}, "notes": self.notes,
        }

    # -- display ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<guard {self.rail} report {self.policy}: {'allowed' if self.allowed else 'BLOCKED'}; {self.reason}>"

    def _text_plain(self) -> str:
        rows = [(f.check, _state(f), f.label, f"{f.score:.2f}", f.action, f"{f.latency_ms:.1f}",
                 (f.error or f.reason)[:60]) for f in self.findings]
        head = (f"guard {self.rail} · {self.policy} · {'allowed' if self.allowed else 'BLOCKED'}"
                f" · {self.total_ms:.1f} ms\n{self.reason}")
        table = html.text_table(("check", "verdict", "label", "score", "action", "ms", "reason"), rows)
        return head + "\n" + table + ("\n" + "\n".join(self.notes) if self.notes else "")

    def _repr_html_(self) -> str:
        rows = []
        for f in self.findings:
            cls = "bad" if f.blocking or f.error else ("muted" if not f.triggered else "")
            rows.append((
                escape(f.check), f"<span class='{cls}'>{escape(_state(f))}</span>", escape(f.label),
                f"{f.score:.2f}", escape(f.action), f"{f.latency_ms:.1f}", escape(f.error or f.reason),
            ))
        if "embed" in self.latency_ms:
            rows.append(("<i>embed</i>", "", "", "", "", f"{self.latency_ms['embed']:.1f}",
                         "shared input embedding (MiniLM)"))
        table = html.table(("check", "verdict", "label", "score", "action", "ms", "reason"), rows, raw=True)
        spans = [s for f in self.findings if f.triggered for s in f.spans]
        body = (f"<div class='{'ok' if self.allowed else 'bad'}'>{escape(self.reason)}</div>"
                f"<pre>{highlight(self.original, spans)}</pre>")
        if self.redacted:
            body += f"<div class='muted'>sent as:</div><pre>{escape(_clip(self.text))}</pre>"
        body += table + "".join(f"<div class='muted'>{escape(n)}</div>" for n in self.notes)
        meta = f"{self.policy} · {'allowed' if self.allowed else 'BLOCKED'} · {self.total_ms:.1f} ms"
        return html.box(f"guard {self.rail}", body, meta)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self._text_plain(), "text/html": self._repr_html_()}


def _state(f: Finding) -> str:
    if f.error:
        return "error"
    if not f.triggered:
        return "pass"
    return {"block": "BLOCK", "redact": "redacted", "warn": "warn", "log": "logged"}.get(f.action, f.action)


def _clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more chars]"


def highlight(text: str, spans: list[Span], limit: int = 4000) -> str:
    """``text`` escaped, with ``spans`` wrapped in <mark title=label>; overlapping spans merged."""
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if s.start < pos or s.start >= limit:
            continue
        end = min(s.end, limit)
        out.append(escape(text[pos:s.start]))
        out.append(f"<mark title='{escape(s.label)}'>{escape(text[s.start:end])}</mark>")
        pos = end
    out.append(escape(text[pos:limit]))
    if len(text) > limit:
        out.append(escape(f" … [{len(text) - limit} more chars]"))
    return "".join(out)
