"""Experiment tracking: W&B (offline by default) + traces (OpenTelemetry spans, stored in the
workspace by ``traces.save``, exported over OTLP when a collector is configured).

Trackers are on the Registry (:data:`trackers`, entry-point group ``cellops.trackers``): an
object with ``start(root, job_type=..., config=...) -> run id | None``, ``log(data, tables=None)``,
``summary(data)``, ``flush()``, ``finish()`` and ``run_id`` / ``error`` attributes, like
``wandb_log.tracker``. ``CELLOPS_TRACKER`` names the one in use (default ``wandb``); records keep
citing its run id under ``wandb_run_id``.
"""

from __future__ import annotations

import os
from typing import Any

from ..registry import Registry
from .trace import KINDS, Span, Trace
from .wandb_log import tracker as wandb_tracker

trackers: Registry[Any] = Registry("tracker", "trackers")
trackers.register("wandb", wandb_tracker)


class _Active:
    """The tracker ``CELLOPS_TRACKER`` names, looked up on each use (so a test or a notebook can
    switch it) — every call site keeps writing ``tracker.log(...)``."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(trackers.get(os.environ.get("CELLOPS_TRACKER", "wandb")), attr)


tracker: Any = _Active()

__all__ = ["KINDS", "Span", "Trace", "tracker", "trackers"]
