"""One exclusive file lock that names its holder (the index-build lock, the scheduler lock, the
tuned guard encoder's training lock).

An ``flock``: the kernel frees it when the holding process dies, however it dies, so a crash
never leaves a stale lock behind. The file's text says who holds it, for the refusal message.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO


class Busy(Exception):
    """Another process holds the lock; ``holder`` is what it wrote into the file ('' if nothing)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def hold(path: Path, holder: str, wait: bool = False) -> IO[str]:
    """Take the lock on ``path`` and write ``holder`` into it; it lasts while the returned file
    stays open. Raises :class:`Busy` at once when another process has it, or with ``wait``
    blocks until that process lets go (or dies)."""
    import fcntl

    f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- the caller keeps it open
    try:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        f.seek(0)
        held_by = f.read().strip()
        f.close()
        raise Busy(held_by) from None
    f.seek(0)
    f.truncate()
    f.write(holder)
    f.flush()
    return f
