"""What a notebook run, a pipeline chain and a replay share: the run kind, the PipelineRun
result, a notebook's code cells and their normalized outputs.

Its own module so that execute (runs a notebook), chain (runs a pipeline file's notebook steps
through execute) and replays (re-runs one and compares) import it at the top instead of
importing each other inside functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import html

KIND = "pipeline"


@dataclass(repr=False)
class PipelineRun:
    """A finished pipeline run: ``.id``, ``.status`` ("ok" | "failed"), ``.record`` (a dict)."""

    id: str
    status: str
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def values(self) -> dict[str, Any]:
        return self.record.get("values", {})

    @property
    def error(self) -> dict[str, Any] | None:
        return self.record.get("error")

    def _summary(self) -> str:
        r = self.record
        what = r.get("notebook") or r.get("pipeline")
        line = f"run {self.id} · {Path(str(what)).name} · {self.status} · {r.get('duration_s', 0):.1f}s"
        if self.error:
            line += f" · {self.error.get('message', '')}"
        return line

    def __repr__(self) -> str:
        return f"<PipelineRun {self._summary()}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        r = self.record
        rows = [("params", json.dumps(r.get("params", {}))), ("values", json.dumps(r.get("values", {}))),
                ("output", r.get("output_notebook")), ("html", r.get("output_html"))]
        if self.error:
            rows.append(("error", self.error.get("message")))
        text = self._summary() + "".join(f"\n  {k}: {v}" for k, v in rows)
        cls = "ok" if self.ok else "bad"
        body = f"<p class='{cls}'>{html.escape(self.status)}</p>" + html.table(("", ""), rows)
        return {"text/plain": text, "text/html": html.box("pipeline run", body, self._summary())}


def code_cells(nb: Any) -> list[Any]:
    """Code cells of the user's notebook (papermill's own error markers left out)."""
    return [c for c in nb.cells if c.cell_type == "code"
            and "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]


_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json",
          "image/png", "image/jpeg", "image/svg+xml")


def normalized_outputs(cell: Any, mask: bool = True) -> list[dict[str, Any]]:
    """A cell's outputs without execution counts, metadata and widget state."""
    out: list[dict[str, Any]] = []
    for o in cell.get("outputs", []):
        t = o.get("output_type")
        if t == "stream":
            item: dict[str, Any] = {"stream": o.get("name"), "text": o.get("text", "")}
            if out and out[-1].get("stream") == item["stream"]:  # chunking varies with timing
                out[-1]["text"] += item["text"]
                continue
        elif t in ("execute_result", "display_data"):
            data = o.get("data", {})
            item = {"data": {m: _blob(m, data[m]) for m in _MIMES if m in data}}
            if not item["data"]:
                continue  # widget-only output: its model id is random
        elif t == "error":
            item = {"error": o.get("ename"), "evalue": o.get("evalue")}
        else:
            continue
        out.append(item)
    return out


def _blob(mime: str, value: Any) -> Any:
    if mime.startswith("image/") and mime != "image/svg+xml":
        return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()
    return "".join(value) if isinstance(value, list) else value


def output_hashes(nb: Any) -> list[str]:
    """One short hash per code cell of its outputs, unmasked (the record's ``cell_hashes``)."""
    return [hashlib.sha256(json.dumps(normalized_outputs(c, mask=False), sort_keys=True)
                           .encode()).hexdigest()[:16] for c in code_cells(nb)]
