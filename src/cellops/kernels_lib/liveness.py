"""Is the process that owns a run (or a staging folder) still alive? Derived, never stored.

A run that should not show ``running`` forever after a SIGKILL names its owner (pid + host) and
beats (:meth:`Workspace.heartbeat`); :func:`run_status` turns a silent or vanished owner into
``dead`` when the run is read.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

HEARTBEAT_S = 10.0  # a running run's owner beats this often ...
STALE_S = 120.0  # ... and a run whose last beat is older than this is dead
HOST = socket.gethostname()


def run_status(status: str, record: dict[str, Any], now: float | None = None) -> str:
    """The status to show: a ``running`` run whose owner process is gone (same host) or whose
    heartbeat is older than STALE_S is ``dead``. Derived when read; nothing is written."""
    owner = record.get("owner")
    if status != "running" or not isinstance(owner, dict):
        return status
    if owner.get("host") == HOST and isinstance(owner.get("pid"), int) and not pid_alive(owner["pid"]):
        return "dead"
    beat = record.get("heartbeat_at")
    if isinstance(beat, (int, float)) and (now or time.time()) - beat > STALE_S:
        return "dead"
    return status


def host_tag() -> str:
    """This host, short and safe inside a file name."""
    return hashlib.sha1(HOST.encode()).hexdigest()[:8]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: dead all the same
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True
