"""Chains: multi-step app logic (prompts, retrieval, guards, model calls, tools, python) as one
versioned YAML spec, run as one trace, tested with the prompts' assertions.

    import cellops
    v, created = cellops.chains.save("qa", yaml_text)       # or a dict; nothing saved if invalid
    r = cellops.chains.run("qa@1", {"question": "..."})      # r.output, r.steps["hits"], r.trace_id
    cellops.chains.test("qa")                                # the spec's tests: (assert ... step: NAME)
    cellops.chains.compare(["qa@1", "qa@2"], models=[...], on=cases)   # DataFrame

The YAML reference is docs/chains.md; the same functions back ``%%chain`` and ``%chain``.
"""

from __future__ import annotations

from typing import Any

from ..workspace import Workspace
from .context import import_resolver, namespace_resolver
from .evaluate import ChainTestFailed, ChainTestReport, compare, compare_grid, test
from .result import ChainRun, ChainStepError, StepResult
from .runner import run
from .spec import TYPES, ChainSpec, parse
from .store import Chain, ChainList, alias, get, history, list_chains


def save(name: str, source: str | dict[str, Any],
         workspace: Workspace | None = None) -> tuple[int, bool]:
    """Validate and save a chain (YAML text or a dict) -> (version number, created)."""
    from .store import save as _save

    chain, created = _save(name, source, workspace)
    return chain.version, created


__all__ = [
    "TYPES", "Chain", "ChainList", "ChainRun", "ChainSpec", "ChainStepError", "ChainTestFailed",
    "ChainTestReport", "StepResult", "alias", "compare", "compare_grid", "get", "history",
    "import_resolver", "list_chains", "namespace_resolver", "parse", "run", "save", "test",
]
