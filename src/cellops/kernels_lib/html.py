"""Small HTML helpers for results' text/html representations (static: survives papermill)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

STYLE = (
    "<style>.cellops{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
    ".cellops table{border-collapse:collapse}.cellops td,.cellops th{border:1px solid #ddd;"
    "padding:4px 8px;vertical-align:top;text-align:left}.cellops th{background:#f5f5f5}"
    ".cellops .muted{color:#777}.cellops pre{white-space:pre-wrap;margin:0}"
    ".cellops .ok{color:#1a7f37}.cellops .bad{color:#cf222e}.cellops mark{background:#ffe08a}</style>"
)


def esc(value: Any) -> str:
    """Any value as text safe inside HTML (element text and quoted attributes); None is ''."""
    return escape("" if value is None else str(value))


def box(title: str, body: str, meta: str = "") -> str:
    m = f" <span class='muted'>{escape(meta)}</span>" if meta else ""
    return f"{STYLE}<div class='cellops'><b>{escape(title)}</b>{m}{body}</div>"


def pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they are trusted HTML)."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    cell = (lambda v: str(v)) if raw else (lambda v: escape("" if v is None else str(v)))
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table for text/plain representations."""
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [min(60, max(len(r[i]) for r in cells)) for i in range(len(columns))]

    def fmt(row: list[str]) -> str:
        return "  ".join(v[:60].ljust(w) for v, w in zip(row, widths, strict=True))

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]])
