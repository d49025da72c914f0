"""The live ``%monitor`` dashboard: the static dashboard's HTML in an ipywidgets HTML, refreshed by
a daemon thread while the server takes traffic.

Bounded: it polls every ``poll_s`` seconds (recomputing the figures only when the app's request
count changed, since drift re-embeds the windows) and stops by itself after ``duration_s``, or
when the cell is re-run (a new ``%monitor`` of the same app stops the previous view). A stopped
view keeps its last figures. Outside a live kernel ``%monitor`` returns the static dashboard, so
papermill and nbconvert keep the HTML.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..kernels_lib import html

_views: dict[str, LiveMonitor] = {}  # app -> its running view (one per app)
_lock = threading.Lock()


class LiveMonitor:
    def __init__(self, app: str, board: Callable[[], Any], count: Callable[[], int],
                 poll_s: float = 5.0, duration_s: float = 600.0) -> None:
        self.app, self._board, self._count = app, board, count
        self.poll_s, self.until = poll_s, time.time() + duration_s
        self.refreshes = 0
        self.dashboard = board()
        self._seen = count()
        self.widget = w.HTML(self.dashboard._repr_mimebundle_()["text/html"])
        self.status = w.HTML("")
        self.box = w.VBox([self.status, self.widget])
        self._stop = threading.Event()
        self._status("live")
        self._thread = threading.Thread(target=self._follow, name=f"monitor-{app}", daemon=True)

    def start(self) -> LiveMonitor:
        with _lock:
            old = _views.get(self.app)
            if old is not None:
                old.stop()
            _views[self.app] = self
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _status(self, state: str) -> None:
        when = time.strftime("%H:%M:%S")
        if state == "live":
            note = (f"live: checks every {self.poll_s:g} s, updated {when}, stops at "
                    f"{time.strftime('%H:%M:%S', time.localtime(self.until))}")
        else:
            note = f"stopped at {when} ({state}); re-run the cell for a live view again"
        self.status.value = f"<span style='color:#777'>{html.esc(note)}</span>"

    def _follow(self) -> None:
        reason = "time limit"
        try:
            while not self._stop.wait(self.poll_s):
                if time.time() >= self.until:
                    break
                n = self._count()
                if n != self._seen:
                    self.dashboard = self._board()
                    self._seen = n
                    self.refreshes += 1
                    self.widget.value = self.dashboard._repr_mimebundle_()["text/html"]
                self._status("live")
            else:
                reason = "cell re-run"
        except Exception as e:  # the workspace went away, a figure failed: keep the last figures
            reason = f"{type(e).__name__}: {e}"
        finally:
            with _lock:
                if _views.get(self.app) is self:
                    del _views[self.app]
            self._status(reason)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The widget in a front end; the dashboard's static HTML and text where widgets don't render."""
        bundle = self.dashboard._repr_mimebundle_()
        return {**bundle, **{k: v for k, v in self.box._repr_mimebundle_().items() if k != "text/plain"}}
