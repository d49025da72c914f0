"""The embedding progress bar of ``%%rag build``: an ipywidgets bar in a live kernel, a text bar
(tqdm, on stderr) elsewhere, so papermill logs show progress too."""

from __future__ import annotations

import time
from typing import Any


class _WidgetBar:
    def __init__(self, desc: str = "embedding", unit: str = "chunks") -> None:
        import ipywidgets as w
        from IPython.display import display

        self.bar = w.IntProgress(min=0, max=1, value=0, description=desc,
                                 layout=w.Layout(width="60%"))
        self.label = w.Label("")
        self.box = w.HBox([self.bar, self.label])
        self.t0 = time.perf_counter()
        self.unit = unit
        display(self.box)

    def __call__(self, done: int, total: int) -> None:
        self.bar.max = max(total, 1)
        self.bar.value = done
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        self.label.value = f"{done}/{total} {self.unit} ({rate:.1f}/s)"

    def close(self) -> None:
        self.bar.bar_style = "success"


class _TextBar:
    def __init__(self, desc: str = "embedding", unit: str = "chunks") -> None:
        self.bar: Any = None
        self.desc, self.unit = desc, unit.rstrip("s")

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total == done:
                return  # nothing to embed: no bar at all
            from tqdm.std import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar(live: bool, desc: str = "embedding", unit: str = "chunks") -> Any:
    """A callable ``(done, total)`` with ``close()`` (also %%synth's bar: desc and unit differ)."""
    return _WidgetBar(desc, unit) if live else _TextBar(desc, unit)
