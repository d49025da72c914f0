"""Experiment tracking: W&B (offline by default) + traces (OpenTelemetry spans, stored in the
workspace by ``traces.save``, exported over OTLP when a collector is configured).

Trackers are on the Registry (:data:`trackers`, entry-point group ``cellops.trackers``): an
object with ``start(root, job_type=..., config=...) -> run id | None``, ``log(data, tables=None)``,
``summary(data)``, ``flush()``, ``finish()`` and ``run_id`` / ``error`` attributes, like
``wandb_log.tracker``. The one in use is ``%config Cellops.tracker`` (:func:`configure`), else
``CELLOPS_TRACKER``, else ``wandb`` (:func:`active_name`); ``%%finetune --tracker`` picks one per
training run. Records cite its run as ``tracker`` (the registry name) + ``tracker_run_id``
(:func:`tracker_run`); rows of older releases say ``wandb_run_id`` (``records.RunRecord`` reads both).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..registry import Registry
from .trace import KINDS, Span, Trace
from .wandb_log import tracker as wandb_tracker

ENV_TRACKER = "CELLOPS_TRACKER"
DEFAULT = "wandb"
trackers: Registry[Any] = Registry("tracker", "trackers")
trackers.register(DEFAULT, wandb_tracker)
_configured: list[str] = []  # %config Cellops.tracker (empty: not set in this process)


def configure(name: str | None) -> None:
    """The tracker this process logs to (``%config Cellops.tracker``); '' or None: back to
    ``CELLOPS_TRACKER`` / ``wandb``. An unknown name raises one line listing the available ones."""
    if name:
        trackers.get(name)
    _configured[:] = [name] if name else []


def active_name() -> str:
    return _configured[0] if _configured else os.environ.get(ENV_TRACKER) or DEFAULT


def child_env() -> dict[str, str]:
    """What a process cellops starts (a pipeline kernel) needs to log to the same tracker."""
    return {ENV_TRACKER: active_name()}


def tracker_run(root: Path, job_type: str = "notebook", config: dict[str, Any] | None = None) -> dict[str, str | None]:
    """Start the active tracker (once per process) for workspace ``root``; the keys a run record
    cites its run by: ``tracker`` and ``tracker_run_id`` (both None when tracking is off)."""
    name = active_name()
    run_id = trackers.get(name).start(root, job_type=job_type, config=config)
    return {"tracker": name if run_id else None, "tracker_run_id": run_id}


class _Active:
    """The active tracker, looked up on each use (so a test or a notebook can switch it) — every
    call site keeps writing ``tracker.log(...)``."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(trackers.get(active_name()), attr)


tracker: Any = _Active()

__all__ = ["KINDS", "Span", "Trace", "active_name", "configure", "tracker", "tracker_run", "trackers"]
