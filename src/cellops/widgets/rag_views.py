"""Static views of index versions for ``%rag list | history | show`` (text/plain + text/html)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..kernels_lib import html


class IndexListView:
    COLUMNS = ("index", "hash", "aliases", "chunks", "files", "embedder", "ann", "created")

    def __init__(self, versions: list[Any]) -> None:
        self.versions = versions
        self.rows = [
            (v.ref, v.hash[:10], ", ".join(v.aliases), v.content["counts"]["chunks"],
             v.content["counts"]["files"], v.content["embedder"], v.content["ann"]["kind"],
             dt.datetime.fromtimestamp(v.created_at).strftime("%Y-%m-%d %H:%M"))
            for v in versions
        ]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        if not self.rows:
            return {"text/plain": "(no indexes yet)", "text/html": "<i>no indexes yet</i>"}
        return {"text/plain": html.text_table(self.COLUMNS, self.rows),
                "text/html": html.box("indexes", html.table(self.COLUMNS, self.rows))}


class IndexView:
    def __init__(self, version: Any) -> None:
        self.version = version

    def _lines(self) -> list[tuple[str, str]]:
        c = self.version.content
        counts = ", ".join(f"{v} {k}" for k, v in c["counts"].items())
        ann = {k: v for k, v in c["ann"].items() if v}
        return [("version", f"{self.version.ref} (hash {self.version.hash[:10]})"),
                ("corpus hash", c["corpus_hash"][:16]), ("counts", counts),
                ("embedder", c["embedder"]),
                ("chunker", f"{c['chunker']} size {c['chunk_size']} overlap {c['overlap']}"),
                ("dense index", str(ann)), ("sources", ", ".join(c["sources"]))]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        skipped = self.version.content.get("skipped") or []
        text = "\n".join(f"{k:12} {v}" for k, v in self._lines())
        body = html.table(("", ""), self._lines())
        if skipped:
            text += "\nskipped:\n" + "\n".join(f"  {s}: {r}" for s, r in skipped)
            body += "<p>skipped</p>" + html.table(("source", "reason"), skipped)
        return {"text/plain": text, "text/html": html.box(f"index {self.version.ref}", body)}


def show_index(ws: Any, ref: str) -> IndexView:
    return IndexView(ws.resolve("index", ref))
