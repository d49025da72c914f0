"""Where DeepSpeed builds its C++ ops, and the build locks a killed build leaves behind.

DeepSpeed compiles its CPU ops (the shared-memory comm op on every launch) on first use with torch's
JIT builder, in ``$TORCH_EXTENSIONS_DIR/<op>/``, guarded by a bare ``lock`` file: a process waiting
for it sleeps until the file goes, for ever. Two things went wrong with torch's default of one
``~/.cache/torch_extensions`` for every environment:

- two virtualenvs (a checkout and its fresh clone) rebuilt the same op in turn, each build's
  ``build.ninja`` naming its own include paths (35 s quiet, 4 min under load, every switch);
- a build killed mid-way (a stopped job, a killed test run) left ``lock`` behind, and every later
  launch on the machine hung without a word.

So each interpreter gets its own build folder (:func:`build_root`), and a launch first removes the
locks no build can still hold (:func:`sweep_stale_locks`): older than any build takes here.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from ..models.weights import USER_CACHE

# a build of DeepSpeed's shm comm op took 35 s on two quiet cores and 266 s at load 20
STALE_AFTER_S = 15 * 60


def build_root() -> Path:
    """This interpreter's op build folder (named after its prefix: one per virtualenv)."""
    tag = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return USER_CACHE / "torch_extensions" / f"py{sys.version_info[0]}{sys.version_info[1]}-{tag}"


def sweep_stale_locks(root: Path, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove ``root/<op>/lock`` files older than ``stale_after_s``; returns those removed."""
    removed = []
    now = time.time()
    for lock in sorted(root.glob("*/lock")):
        try:
            if now - lock.stat().st_mtime > stale_after_s:
                lock.unlink()
                removed.append(lock)
        except FileNotFoundError:  # its build finished meanwhile
            pass
    return removed
