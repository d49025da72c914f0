"""The load-average report every benchmark prints: the machine is shared, and a figure measured
under load is not comparable with one measured on a quiet machine.

``with LoadWatch(): main()`` prints the 1-minute load average at start, and at the end (also when
the run fails) prints it again with the verdict: a run is NOISY when the load was above
``NOISY_ABOVE`` at its start or its end. A benchmark that puts the verdict beside its figures
calls ``watch.end()`` (idempotent) where it prints them.
"""

from __future__ import annotations

import os
from types import TracebackType

NOISY_ABOVE = 1.5  # the team's rule: a run above this 1-minute load average is marked noisy


def load_average() -> float:
    return os.getloadavg()[0]


class LoadWatch:
    def __init__(self) -> None:
        self.start = load_average()
        self.end_load: float | None = None
        print(f"load average at start: {self.start:.2f} on {os.cpu_count()} cores", flush=True)

    @property
    def noisy(self) -> bool:
        return max(self.start, self.end_load if self.end_load is not None else load_average()) > NOISY_ABOVE

    def end(self) -> bool:
        """Print the end load and the verdict once; -> whether the run is noisy."""
        if self.end_load is None:
            self.end_load = load_average()
            verdict = (f"NOISY run (load above {NOISY_ABOVE}: figures not comparable with a quiet machine)"
                       if self.noisy else "quiet run")
            print(f"load average at end: {self.end_load:.2f} -> {verdict}", flush=True)
        return self.noisy

    def __enter__(self) -> LoadWatch:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.end()
