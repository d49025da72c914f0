"""The live trace waterfall under a call in a live kernel: an ipywidgets HTML view that
subscribes to the running Trace (``Trace.subscribe``) and redraws the static waterfall
(tracking/waterfall.py: nested timed bars coloured by kind, a click on a span opens its inputs,
outputs, attributes, events and errors; every value escaped) as spans start, end and get events.

When the call ends the live view closes: the call's result carries the same waterfall, folded, as
plain HTML, which is what papermill and nbconvert keep. Outside a live kernel nothing is shown.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

MIN_INTERVAL_S = 0.1  # throttled redraws: at most this often
SMALL_TRACE = 50  # up to this many spans every start and end redraws (one redraw of 50 rows ~ 1 ms)


class LiveTraceView:
    """``on_trace`` for ``chains.run``, ``prompts.run``/``save_and_run`` and ``rag.ask``:
    ``view = LiveTraceView(); run(..., on_trace=view)``,
    then ``view.close()`` when the call returns or raises."""

    def __init__(self, min_interval_s: float = MIN_INTERVAL_S) -> None:
        import ipywidgets as w

        self.widget = w.HTML(value="<span class='muted'>trace starting…</span>")
        self.trace: Any = None
        self.redraws = 0
        self._last = 0.0
        self._min = min_interval_s
        self._shown = False
        self._handle: Any = None
        self._lock = threading.Lock()  # a grid's spans start and end in its worker threads
        self._nested: dict[str, Any] = {}  # spans of traces run inside this one (a grid's chain runs)

    def __call__(self, trace: Any) -> None:
        from IPython.display import display

        self.trace = trace
        trace.subscribe(self._changed)
        self._handle = display(self.widget, display_id=True)
        self._shown = True
        self.redraw()

    def _changed(self, span: Any, what: str) -> None:
        if span._owner is not self.trace:
            self._nested[span.span_id] = span
        # each span's start and end show at once (that is the filling in); events, and everything
        # in a big trace (a map over many items), at most every _min s; the root's end always
        small = len(self.trace.spans) + len(self._nested) <= SMALL_TRACE  # nested runs count too
        final = what == "end" and span is self.trace.root
        if final or (small and what != "event") or time.perf_counter() - self._last >= self._min:
            self.redraw()

    def redraw(self) -> None:
        from ..kernels_lib.tracking.waterfall import render

        with self._lock:
            try:
                page = render(self._shown_trace())["text/html"]
            except RuntimeError:  # a worker changed a span's attributes mid-render: the next change redraws
                return
            self.widget.value = page
            self.redraws += 1
            self._last = time.perf_counter()

    def _shown_trace(self) -> Any:
        """The trace with the spans of the traces run inside it (they share its trace id)."""
        if not self._nested:
            return self.trace
        return SimpleNamespace(trace_id=self.trace.trace_id, root=self.trace.root,
                               spans=list(self.trace.spans) + list(self._nested.values()))

    def close(self) -> None:
        """Take the live view away (the result's static waterfall stays)."""
        if self._shown:
            self.widget.close()
            self._shown = False


    def settle(self) -> None:
        """For calls whose result carries no waterfall (compare/test grids): the output keeps the
        finished trace as static HTML (what papermill and nbconvert save) and the widget goes."""
        if self._shown and self.trace is not None:
            from ..kernels_lib.tracking.waterfall import render

            self._handle.update(render(self._shown_trace()), raw=True)  # text/html + text/plain
            self.close()


def live_trace_view(live: bool) -> LiveTraceView | None:
    """A live view in a kernel with a front end, None elsewhere (batch runs keep the static one)."""
    return LiveTraceView() if live else None
