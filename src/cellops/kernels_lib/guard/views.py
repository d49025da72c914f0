"""Displayable values of the guard API (text/plain + static text/html)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from .. import html


def _rows(policy: Any) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for rail, items in policy.rails.items():
        for spec, _ in items:
            opts = ", ".join(f"{k}={v}" for k, v in spec.options.items() if v not in (None, {}, [], True))
            rows.append((rail, spec.id if spec.id == spec.check else f"{spec.id} ({spec.check})",
                         spec.action, f"{spec.threshold:.2f}", opts[:120]))
    return rows


def policy_bundle(policy: Any) -> dict[str, str]:
    cols = ("rail", "check", "action", "threshold", "options")
    rows = _rows(policy)
    head = f"guard policy {policy.ref} · hash {policy.hash[:10]}"
    desc = policy.spec.description
    return {
        "text/plain": head + (f"\n{desc}" if desc else "") + "\n" + html.text_table(cols, rows),
        "text/html": html.box(head, (f"<div class='muted'>{escape(desc)}</div>" if desc else "")
                              + html.table(cols, rows)),
    }


@dataclass
class GuardStatus:
    """What ``%guard status`` shows: the active policy (or none) and its checks."""

    active: str | None
    policy: Any = None
    message: str = ""

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        if self.policy is None:
            text = self.message or "guard is off: no policy applies to %%prompt / %%rag calls"
            return {"text/plain": text, "text/html": html.box("guard", f"<div class='muted'>{escape(text)}</div>")}
        inner = policy_bundle(self.policy)
        msg = self.message or f"guard is on: {self.active} applies to every %%prompt and %%rag call"
        return {"text/plain": msg + "\n" + inner["text/plain"],
                "text/html": html.box("guard", f"<div class='ok'>{escape(msg)}</div>" + inner["text/html"])}


@dataclass
class PolicyList:
    rows: list[tuple[str, str, str, str]]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cols = ("policy", "hash", "aliases", "description")
        return {"text/plain": html.text_table(cols, self.rows),
                "text/html": html.box("guard policies", html.table(cols, self.rows))}
