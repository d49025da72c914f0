"""The load-average report every benchmark prints: the machine is shared, and a figure measured
under load is not comparable with one measured on a quiet machine.

``with LoadWatch(): main()`` prints the 1-minute load average at start, and at the end (also when
the run fails) prints it again with the verdict: a run is NOISY when the load was above
``NOISY_ABOVE`` at its start or its end. A benchmark that puts the verdict beside its figures
calls ``watch.end()`` (idempotent) where it prints them.

The load average counts the benchmark's own threads too (a 2-thread run ends near 2 on an idle
2-core machine), so the end line also says how many cores *other* processes kept busy during the
run: the machine's busy CPU time from /proc/stat minus this process's and its finished
children's, over the wall time. That figure is what tells a quiet run from a shared one.
"""

from __future__ import annotations

import os
import resource
import time
from types import TracebackType

NOISY_ABOVE = 1.5  # the team's rule: a run above this 1-minute load average is marked noisy


def load_average() -> float:
    return os.getloadavg()[0]


def _busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores), or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class LoadWatch:
    def __init__(self) -> None:
        self.start = load_average()
        self.end_load: float | None = None
        self._t0, self._busy0, self._own0 = time.monotonic(), _busy_seconds(), _own_seconds()
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
            others = self.other_cores()
            if others is not None:
                print(f"other processes kept {others:.2f} cores busy on average during the run", flush=True)
        return self.noisy

    def other_cores(self) -> float | None:
        """Cores kept busy by processes other than this one and its finished children, on average."""
        busy, wall = _busy_seconds(), time.monotonic() - self._t0
        if busy is None or self._busy0 is None or wall <= 0:
            return None
        return max(0.0, (busy - self._busy0 - (_own_seconds() - self._own0)) / wall)

    def __enter__(self) -> LoadWatch:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.end()
