"""Guard checks: each module registers its checks in ``checks`` (a Registry, like plugins)."""

from __future__ import annotations

from .base import RAILS, Check, Opt, checks, register


def load_builtins() -> None:
    """Import the built-in check modules (they register themselves)."""
    from . import harmful, injection, judge, output, pii, topics  # noqa: F401


__all__ = ["RAILS", "Check", "Opt", "checks", "load_builtins", "register"]
