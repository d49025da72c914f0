"""A span per executed notebook cell, with the kernel's own spans nested under it.

The kernel runs in another process, so the parent travels as a W3C traceparent in a file
(``CELLOPS_TRACEPARENT_FILE``) that this object rewrites before each cell: a Trace the kernel
makes while a cell runs (a ``%%prompt``, a ``cellops.rag.ask``) joins the cell's span. Papermill
runs cells one at a time, so the file always names the cell that is running.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .genai import clip
from .trace import ENV_TRACEPARENT_FILE, Span, Trace, traceparent


class CellSpans:
    """Hooks for papermill's ``cell_start`` / ``cell_exception`` / ``cell_complete``."""

    def __init__(self, trace: Trace, parent: Span, folder: Path) -> None:
        self.trace, self.parent = trace, parent
        self.path = folder / "traceparent"
        self._open: dict[int, Span] = {}
        self._point(parent)

    def env(self) -> dict[str, str]:
        """What the kernel needs: the parent file, and the collector this process exports to."""
        from . import otel

        return {ENV_TRACEPARENT_FILE: str(self.path), **otel.child_env()}

    def _point(self, span: Span) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(traceparent(span))
        os.replace(tmp, self.path)  # the kernel never reads half a line

    def start(self, cell: Any, index: int) -> None:
        if cell.get("cell_type") != "code":
            return
        tags = [str(t) for t in cell.get("metadata", {}).get("tags", [])]
        span = self.trace.start_span(f"cell {index + 1}", "step", parent=self.parent, **{
            "cellops.cell.index": index, "cellops.cell.tags": tags, "input.value": clip(cell.get("source", ""))})
        self._open[index] = span
        self._point(span)

    def exception(self, cell: Any, index: int, exc: BaseException | None = None) -> None:
        span = self._open.get(index)
        if span is not None:
            span.status = "error"
            span.attrs["error"] = f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', exc)}"[:500]

    def close(self) -> None:
        """End cells the kernel never finished (it died, the run timed out)."""
        for index in list(self._open):
            span = self._open.pop(index)
            span.status = "error"
            span.attrs.setdefault("error", "the cell did not finish")
            self.trace.end_span(span)
        self.path.unlink(missing_ok=True)

    def complete(self, cell: Any, index: int) -> None:
        span = self._open.pop(index, None)
        if span is not None:
            self.trace.end_span(span)
            self._point(self.parent)
