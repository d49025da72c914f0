"""Experiment tracking: W&B (offline by default) + traces recorded in the workspace."""

from .trace import Span, Trace
from .wandb_log import tracker

__all__ = ["Span", "Trace", "tracker"]
