"""Live training dashboard: progress bar, step / loss / tokens/s / ETA, loss and eval-loss curve,
before/after eval and samples, a stop button.

A daemon thread tails the run's event file and updates the widgets; the kernel stays free to run
other cells. When the run ends the view freezes on the static summary (the same HTML papermill
stores), so a saved notebook still shows the result.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as w
from IPython.display import display

from ..kernels_lib import html
from ..kernels_lib.train import Job
from ..kernels_lib.train import events as ev
from ..kernels_lib.train.view import (
    margin_line,
    progress_line,
    samples_table,
    summary_html,
    svg_curves,
)


def _num(v: Any) -> str:
    """A loss from the event file (a number, unless the file was edited by hand)."""
    return f"{v:.4f}" if isinstance(v, int | float) else str(v)


class TrainingDashboard:
    def __init__(self, job: Job, poll_s: float = 1.0) -> None:
        self.job, self.poll_s = job, poll_s
        self.header = w.HTML(f"<b>finetune {html.esc(job.name)}</b> <span style='color:#777'>run "
                             f"{html.esc(job.run_id)} · {html.esc(job.plan['reason'])}</span>")
        self.bar = w.IntProgress(value=0, min=0, max=1, description="starting", bar_style="info",
                                 layout=w.Layout(width="420px"))
        self.stats = w.HTML("")
        self.curve = w.HTML("")
        self.result = w.HTML("")
        self.stop_button = w.Button(description="stop", button_style="warning", icon="stop")
        self.stop_button.on_click(lambda _b: threading.Thread(target=self.job.stop, daemon=True).start())
        self.box = w.VBox([self.header, w.HBox([self.bar, self.stop_button]), self.stats,
                           self.curve, self.result])
        self._done = threading.Event()
        self._tail = ev.Tail(job.events_path)
        self._events: list[ev.Event] = []
        self.refresh()
        self._thread = threading.Thread(target=self._follow, name=f"finetune-{job.name}", daemon=True)
        self._thread.start()

    def display(self) -> None:
        display(self.box)

    def refresh(self) -> str:
        """Read new events and update every widget; returns the job status."""
        self._events += self._tail.read()
        m = ev.summarize(self._events)
        status = self.job.status
        total = m.get("max_steps") or 1
        self.bar.max = total
        self.bar.value = min(m.get("step") or 0, total)
        self.bar.description = status
        self.bar.bar_style = {"done": "success", "failed": "danger", "stopped": "warning"}.get(status, "info")
        self.stats.value = html.pre(progress_line(m))
        self.curve.value = svg_curves(m["losses"], m["eval_losses"])
        samples = [e for e in self._events if e["kind"] == "sample"]
        before, after = m.get("eval_loss_before"), m.get("eval_loss_after")
        parts = []
        if before is not None:
            parts.append(f"eval loss before <b>{html.esc(_num(before))}</b>" +
                         (f" → after <b>{html.esc(_num(after))}</b>" if after is not None else ""))
        if m.get("eval_margin_before") is not None:
            parts.append(html.esc(margin_line(m)))
        if self.job.model:
            model = html.esc(self.job.model)
            parts.append(f"registered <code>{model}</code> (use <code>--model {model}</code>)")
        if status == "failed" and self.job.error:
            parts.append(f"<span style='color:#cf222e'>{html.esc(self.job.error)}</span>")
        self.result.value = "<br>".join(parts) + samples_table(samples)
        return status

    def _follow(self) -> None:
        while not self._done.is_set():
            try:
                status = self.refresh()
            except Exception as e:  # a watcher must never take the kernel down
                self.stats.value = html.pre(f"dashboard stopped: {e}")
                return
            if status in ("done", "failed", "stopped"):
                self.stop_button.disabled = True
                self.finish()
                return
            self._done.wait(self.poll_s)

    def finish(self) -> None:
        self._done.set()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from ..kernels_lib.train.view import summary_text

        return {"text/plain": summary_text(self.job), "text/html": summary_html(self.job)}
