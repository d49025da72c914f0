"""Rating buttons (👍 / 👎 + comment) under an output; a click stores the rating with the run."""

from __future__ import annotations

from typing import Any

from ..kernels_lib import html
from ..kernels_lib.errors import CellopsError
from ..kernels_lib.prompts import feedback
from ..kernels_lib.workspace import Workspace


class FeedbackButtons:
    """Rates one run output, or one grid cell (``cell="case:column"``)."""

    def __init__(self, run_id: str, cell: str | None = None, workspace: Workspace | None = None) -> None:
        import ipywidgets as w

        self.run_id, self.cell, self.workspace = run_id, cell, workspace
        self.rating: int | None = None
        small = w.Layout(width="40px")
        self.up = w.Button(description="👍", tooltip="good output", layout=small)
        self.down = w.Button(description="👎", tooltip="bad output", layout=small)
        self.comment = w.Text(placeholder="comment (optional)", continuous_update=False,
                              layout=w.Layout(width="220px"))
        self.status = w.HTML("")
        self.up.on_click(lambda _: self.rate(feedback.UP))
        self.down.on_click(lambda _: self.rate(feedback.DOWN))
        # a comment typed after the click (Enter / leaving the box) updates the stored rating
        self.comment.observe(lambda _: self.rating is not None and self.rate(self.rating), "value")
        self.widget = w.HBox([self.up, self.down, self.comment, self.status])

    def rate(self, value: int) -> None:
        try:
            feedback.rate(self.run_id, value, self.comment.value, self.cell, self.workspace)
        except CellopsError as e:
            self.status.value = f"<span style='color:#cf222e'>{html.esc(e)}</span>"
            return
        self.rating = value
        self.up.button_style = "success" if value == feedback.UP else ""
        self.down.button_style = "danger" if value == feedback.DOWN else ""
        self.status.value = "<span style='color:#777'>saved</span>"


class RunWithFeedback:
    """A PromptRun shown with rating buttons below it (live kernels only).

    Its mime bundle has the widget view for the live front end and the run's own text/html and
    text/plain, so a saved or converted notebook still shows the answer.
    """

    def __init__(self, run: Any, workspace: Workspace | None = None) -> None:
        import ipywidgets as w

        self.run = run
        self.buttons = FeedbackButtons(run.run_id, None, workspace)
        self._static = run._repr_mimebundle_()
        self.widget = w.VBox([w.HTML(self._static["text/html"]), self.buttons.widget])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self._static["text/html"]
        bundle["text/plain"] = self._static["text/plain"]
        return bundle
