"""Versioned, parameterized prompt templates, their runs, and the prompt engineering loop.

``run`` one version; ``compare`` versions x models over cases (a DataFrame; ``compare_grid``
gives the displayable grid); ``test`` a version against its assertions (``raise_on_failure``
fails a pipeline); ``rate`` / ``export_feedback`` turn ratings into training data; the response
cache (``cache_stats`` / ``clear_cache``) makes re-runs instant; ``optimize`` searches system
prompts, few-shot demos, parameters and models against the assertions, within a call budget.
"""

from __future__ import annotations

from typing import Any

from ..workspace import Workspace, get_workspace
from . import cache as _cache
from .assertions import Check
from .compare import compare, compare_grid
from .feedback import export as export_feedback
from .feedback import list_feedback, rate
from .grid import CompareResult
from .optimize import optimize  # Optuna and DSPy load only when a search runs
from .optimize_view import OptimizeResult
from .perturb import perturb
from .run import PromptRun, run, save_and_run
from .store import Prompt, alias, diff, get, history, list_prompts, save
from .testing import PromptTestFailed, TestReport, test


def cache_stats(workspace: Workspace | None = None) -> dict[str, Any]:
    """Cached responses per model URI in the workspace."""
    return _cache.stats(workspace or get_workspace())


def clear_cache(model: str | None = None, workspace: Workspace | None = None) -> int:
    """Delete cached responses (of one model URI, or all); returns how many."""
    return _cache.clear(workspace or get_workspace(), model)


__all__ = [
    "Check", "CompareResult", "OptimizeResult", "Prompt", "PromptRun", "PromptTestFailed", "TestReport",
    "alias",
    "cache_stats", "clear_cache", "compare", "compare_grid", "diff", "export_feedback", "get",
    "history", "list_feedback", "list_prompts", "optimize", "perturb", "rate", "run", "save", "save_and_run", "test",
]
