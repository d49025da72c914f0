"""The embedding progress bar of ``%%rag build``: an ipywidgets bar in a live kernel, a text bar
(tqdm, on stderr) elsewhere, so papermill logs show progress too."""

from __future__ import annotations

import time
from typing import Any


class _WidgetBar:
    def __init__(self) -> None:
        import ipywidgets as w
        from IPython.display import display

        self.bar = w.IntProgress(min=0, max=1, value=0, description="embedding",
                                 layout=w.Layout(width="60%"))
        self.label = w.Label("")
        self.box = w.HBox([self.bar, self.label])
        self.t0 = time.perf_counter()
        display(self.box)

    def __call__(self, done: int, total: int) -> None:
        self.bar.max = max(total, 1)
        self.bar.value = done
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        self.label.value = f"{done}/{total} chunks ({rate:.0f}/s)"

    def close(self) -> None:
        self.bar.bar_style = "success"


class _TextBar:
    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total == done:
                return  # nothing to embed: no bar at all
            from tqdm.std import tqdm

            self.bar = tqdm(total=total, desc="embedding", unit="chunk")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar(live: bool) -> Any:
    """A callable ``(done, total)`` with ``close()``."""
    return _WidgetBar() if live else _TextBar()
