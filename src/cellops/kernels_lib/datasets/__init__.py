"""Versioned datasets with dataset cards, and synthetic data.

    import cellops
    v, created = cellops.datasets.save("qa", "qa.jsonl")     # or a DataFrame, rows, {split: rows}
    v.card                                                     # rows, format, schema, PII, ...
    cellops.prompts.test("qa-prompt", "qa@1")                  # NAME@V works wherever a path does
    cellops.datasets.synthesize("more-qa", seed="qa@1", n=20)  # self-instruct from seed tasks

Versions are immutable and content-addressed (the hash of the kept rows). Bad rows are listed on
the card with their line numbers; the good rows are kept.
"""

from __future__ import annotations

from typing import Any

from .resolve import find, resolve
from .store import DatasetVersion, alias, get, history, list_datasets, save

__all__ = ["DatasetVersion", "alias", "card", "find", "get", "history", "list_datasets", "resolve",
           "save", "synthesize"]


def card(ref: str, workspace: Any = None) -> dict[str, Any]:
    """The card of dataset ``ref`` as a dict (the version itself displays it)."""
    return get(ref, workspace).card


def synthesize(name: str, *, seed: Any, n: int, model: str = "default", **kwargs: Any) -> Any:
    """Self-instruct generation from ``seed`` tasks; see :func:`synth.synthesize`."""
    from .synth import synthesize as _synthesize

    return _synthesize(name, seed=seed, n=n, model=model, **kwargs)
