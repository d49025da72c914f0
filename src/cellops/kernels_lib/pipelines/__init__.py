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

from ..workspace import Workspace
from .chain import run_chain
from .execute import check_out_dir, run_notebook
from .kernel import DEFAULT_KERNEL
from .replays import Replay, replay
from .result import KIND, PipelineRun
from .values import record

__all__ = ["KIND", "PipelineRun", "Replay", "record", "replay", "report", "run", "runs"]


def run(notebook_or_pipeline: str | Path, params: dict[str, Any] | None = None, *,
        out_dir: str | Path | None = None, timeout: float | None = None, retries: int = 0,
        kernel_name: str = DEFAULT_KERNEL, workspace: Workspace | None = None, run_id: str | None = None,
        extra: dict[str, Any] | None = None, cwd: str | Path | None = None, name: str | None = None,
        kernel_env: dict[str, str] | None = None, progress: bool = False) -> PipelineRun:
    """Run a notebook (``execute.run_notebook``: papermill, one record) or a pipeline .yaml
    (``chain.run_chain``: its notebook and chain steps in dependency order, one record).

    ``out_dir`` gets a copy of the executed notebook and its HTML (a pipeline: one folder per
    step); ``timeout`` (seconds, the whole run) and ``retries`` (re-runs after a failure);
    ``kernel_name``; ``cwd`` the notebooks' working folder (default: each notebook's own);
    ``kernel_env`` variables added to the kernels' environment; ``name`` the run's name
    (default: the notebook's stem or the pipeline's name); ``progress`` papermill's per-cell bar
    on stderr; ``run_id`` / ``extra`` set the record's id and add keys to it."""
    check_out_dir(out_dir)
    options = dict(out_dir=out_dir, timeout=timeout, retries=retries, kernel_name=kernel_name,
                   workspace=workspace, run_id=run_id, extra=extra, name=name, kernel_env=kernel_env,
                   progress=progress)
    if Path(notebook_or_pipeline).suffix in (".yaml", ".yml"):
        return run_chain(notebook_or_pipeline, params, cwd=cwd, **options)
    return run_notebook(notebook_or_pipeline, params, cwd=Path(cwd) if cwd else None, **options)


def runs(limit: int = 50, kind: str | None = KIND) -> list[dict[str, Any]]:
    """Recent runs in the workspace (pipeline runs by default; ``kind=None`` for all)."""
    from ..workspace import get_workspace

    return get_workspace().list_runs(kind, limit=limit)


def report(run_ids: list[str], **kwargs: Any) -> Any:
    """An HTML (and, online, W&B) report comparing runs; see ``reports.report``."""
    from .reports import report as _report

    return _report(run_ids, **kwargs)
