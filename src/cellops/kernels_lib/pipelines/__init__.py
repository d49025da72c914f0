"""Pipelines: notebooks run by papermill with a full reproducibility record.

``run(notebook, params)`` executes a notebook (or a pipeline .yaml chain) and records it;
``record(name=value)`` hands values from a notebook to its run record and to chained steps;
``replay(run_id)`` re-executes a run and compares outputs cell by cell; ``schedules`` holds cron
schedules run by ``cellops scheduler``; ``report(run_ids)`` compares runs in one HTML file.
Heavy imports (papermill, nbconvert, apscheduler) happen inside the functions that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .chain import run_chain
from .execute import run_notebook
from .replays import Replay, replay
from .result import KIND, PipelineRun
from .values import record

__all__ = ["KIND", "PipelineRun", "Replay", "record", "replay", "report", "run", "runs"]


def run(notebook_or_pipeline: str | Path, params: dict[str, Any] | None = None, **options: Any) -> PipelineRun:
    """Run a notebook (``execute.run_notebook``: papermill, one record) or a pipeline .yaml
    (``chain.run_chain``: its notebook and chain steps in dependency order, one record)."""
    if Path(notebook_or_pipeline).suffix in (".yaml", ".yml"):
        return run_chain(notebook_or_pipeline, params, **options)
    return run_notebook(notebook_or_pipeline, params, **options)


def runs(limit: int = 50, kind: str | None = KIND) -> list[dict[str, Any]]:
    """Recent runs in the workspace (pipeline runs by default; ``kind=None`` for all)."""
    from ..workspace import get_workspace

    return get_workspace().list_runs(kind, limit=limit)


def report(run_ids: list[str], **kwargs: Any) -> Any:
    """An HTML (and, online, W&B) report comparing runs; see ``reports.report``."""
    from .reports import report as _report

    return _report(run_ids, **kwargs)
