"""Small displayable results shared by the magics (text/plain + text/html)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..kernels_lib import html


class TextView:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": html.box("", html.pre(self.text))}


class PromptListView:
    COLUMNS = ("prompt", "hash", "aliases", "model", "created")

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.rows = [
            (p.ref, p.hash[:10], ", ".join(p.aliases), p.params.get("model", "default"),
             dt.datetime.fromtimestamp(p.created_at).strftime("%Y-%m-%d %H:%M"))
            for p in items
        ]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        if not self.rows:
            return {"text/plain": "(no prompts yet)", "text/html": "<i>no prompts yet</i>"}
        return {"text/plain": html.text_table(self.COLUMNS, self.rows),
                "text/html": html.box("prompts", html.table(self.COLUMNS, self.rows))}
