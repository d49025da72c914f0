"""Experiment tracking: W&B (offline by default) + traces (OpenTelemetry spans, stored in the
workspace by ``traces.save``, exported over OTLP when a collector is configured)."""

from .trace import KINDS, Span, Trace
from .wandb_log import tracker

__all__ = ["KINDS", "Span", "Trace", "tracker"]
