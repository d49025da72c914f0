"""Streams tokens into the cell as they are generated.

In a live kernel a display handle is updated in place (throttled), then replaced by the final
result's rich view; in a terminal tokens go to stdout; in a batch run (papermill under cellops,
CELLOPS_BATCH=1) nothing streams and the cell's output is the final result alone.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from IPython.display import HTML, display

from ..kernels_lib import env


class TokenStream:
    def __init__(self, live: bool, interval_s: float = 0.05) -> None:
        self.live, self.interval_s = live, interval_s
        self.parts: list[str] = []
        self._last = 0.0
        self._handle = display(HTML(""), display_id=True) if live else None
        self.quiet = not live and env.batch()

    def __call__(self, piece: str) -> None:
        self.parts.append(piece)
        if self.quiet:
            return
        if self._handle is None:
            sys.stdout.write(piece)
            sys.stdout.flush()
            return
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            from ..kernels_lib import html

            self._handle.update(HTML(f"<pre style='white-space:pre-wrap'>{html.esc(''.join(self.parts))}</pre>"))

    def finish(self, result: Any) -> Any:
        """Show the final result where the stream was; returns what the cell should return."""
        if self._handle is not None:
            self._handle.update(result)
            return None
        if self.parts and not self.quiet:
            sys.stdout.write("\n")
        return result
