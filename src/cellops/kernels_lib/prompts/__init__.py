"""Versioned, parameterized prompt templates and their runs."""

from .run import PromptRun, run
from .store import Prompt, alias, diff, get, history, list_prompts, save

__all__ = ["Prompt", "PromptRun", "alias", "diff", "get", "history", "list_prompts", "run", "save"]
