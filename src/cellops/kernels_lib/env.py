"""Boolean environment flags read one way everywhere.

``CELLOPS_BATCH=1`` (set by the pipeline runner) means "no live front end: raise on a failing test,
show no widgets, stream nothing". A user who writes ``CELLOPS_BATCH=0`` means off, so every reader
goes through :func:`flag` instead of ``bool(os.environ.get(...))``, which took "0" for on.
"""
from __future__ import annotations

import os

_OFF = frozenset({"", "0", "false", "no", "off"})


def flag(name: str) -> bool:
    """True when ``name`` is set to anything but empty, 0, false, no or off (any case, spaces trimmed)."""
    return os.environ.get(name, "").strip().lower() not in _OFF


def batch() -> bool:
    """A batch run (papermill pipeline, ``CELLOPS_BATCH`` on): no widgets, failures raise."""
    return flag("CELLOPS_BATCH")
