"""The live compare grid: cells fill in as they complete, then each output gets rating buttons.

The widget renders the same cell HTML as the static table (``Cell.html``); once the run is
recorded the mime bundle also carries that static table, so papermill / nbconvert / GitHub
show the grid without a widget manager.
"""

from __future__ import annotations

from typing import Any

from ..kernels_lib import html
from ..kernels_lib.prompts.cases import Case
from ..kernels_lib.prompts.grid import Cell, Column, CompareResult
from ..kernels_lib.workspace import Workspace
from .feedback import FeedbackButtons


def _box(inner: str) -> str:
    return f"<div class='cellops'>{inner}</div>"


class CompareGridView:
    def __init__(self, columns: list[Column], cases: list[Case], workspace: Workspace | None = None) -> None:
        import ipywidgets as w

        self.columns, self.cases, self.workspace = columns, cases, workspace
        self.result: CompareResult | None = None
        self.shown: set[str] = set()
        self.buttons: dict[str, FeedbackButtons] = {}
        header = [w.HTML(_box("<b>#</b>")), w.HTML(_box("<b>case</b>"))]
        header += [w.HTML(_box(f"<b>{html.esc(c.label)}</b>")) for c in columns]
        self.slots = [[w.VBox([w.HTML(_box("<span class='muted'>waiting…</span>"))]) for _ in columns]
                      for _ in cases]
        children = list(header)
        for case, row in zip(cases, self.slots, strict=True):
            children += [w.HTML(_box(html.esc(case.number))), w.HTML(_box(html.pre(case.label))), *row]
        self.grid = w.GridBox(children, layout=w.Layout(
            grid_template_columns=f"36px minmax(120px, 1fr) repeat({len(columns)}, minmax(220px, 2fr))",
            grid_gap="4px 8px"))
        self.status = w.HTML(_box(f"<span class='muted'>0 / {self.total} cells</span>"))
        self.widget = w.VBox([w.HTML(html.STYLE), self.grid, self.status])

    @property
    def total(self) -> int:
        return len(self.cases) * len(self.columns)

    def update(self, cell: Cell) -> None:
        """Show one finished cell (called as cells complete)."""
        import ipywidgets as w

        self.shown.add(cell.key)
        self.slots[cell.case][cell.column].children = (w.HTML(_box(cell.html())),)
        self.status.value = _box(f"<span class='muted'>{len(self.shown)} / {self.total} cells</span>")

    def finish(self, result: CompareResult) -> None:
        """Fill any cell not shown yet and put rating buttons under every output."""
        self.result = result
        for row in result.cells:
            for cell in row:
                if cell.key not in self.shown:
                    self.update(cell)
                if cell.output is not None and not cell.blocked and result.run_id:
                    b = FeedbackButtons(result.run_id, cell.key, self.workspace)
                    self.buttons[cell.key] = b
                    slot = self.slots[cell.case][cell.column]
                    slot.children = (*slot.children, b.widget)
        self.status.value = _box(f"<span class='muted'>{html.esc(result.summary())}</span>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_() or {})
        if self.result is not None:
            static = self.result._repr_mimebundle_()
            bundle["text/html"], bundle["text/plain"] = static["text/html"], static["text/plain"]
        else:
            bundle["text/plain"] = f"prompt compare: running {self.total} cells…"
        return bundle
