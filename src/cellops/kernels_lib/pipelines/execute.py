"""``run_notebook(notebook, params)``: execute a notebook with papermill and record everything.

A run gets a folder ``artifacts/runs/<id>/`` (the source notebook as run, the executed notebook,
its HTML copy, the values file) and a workspace run (kind ``pipeline``) holding the
reproducibility record. The run is recorded as ``running`` before the kernel starts, so a run
killed from outside is still listed, then updated with the outcome.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from .. import tracking
from ..errors import InvalidInputError
from ..records import environment
from ..tracking import Trace, traces
from ..tracking.cells import CellSpans
from ..workspace import Workspace, get_workspace
from . import kernel, notebook, provenance
from .result import KIND, PipelineRun, code_cells, output_hashes
from .values import ENV_VALUES, metrics_of, read_values


def run_notebook(
    notebook_or_pipeline: str | Path, params: dict[str, Any] | None = None, *,
    out_dir: str | Path | None = None, timeout: float | None = None, retries: int = 0,
    kernel_name: str = kernel.DEFAULT_KERNEL, workspace: Workspace | None = None,
    run_id: str | None = None, extra: dict[str, Any] | None = None, cwd: Path | None = None,
    name: str | None = None, kernel_env: dict[str, str] | None = None, progress: bool = False,
) -> PipelineRun:
    """Execute a notebook (or a pipeline .yaml) with papermill and record the run.

    ``timeout`` is the whole run's limit in seconds (each cell gets the time left); ``retries``
    re-executes from the start after a failure. ``cwd`` defaults to the notebook's folder (as
    in Jupyter); ``kernel_env`` adds environment variables for the kernel; ``progress`` shows
    papermill's per-cell progress bar on stderr. Bad input raises before anything runs.
    """
    if retries < 0 or (timeout is not None and timeout <= 0):
        raise InvalidInputError("retries must be >= 0 and timeout > 0 seconds")
    check_out_dir(out_dir)
    ws = workspace or get_workspace()
    src = notebook.notebook_path(notebook_or_pipeline)
    given = notebook.check_parameters(src, dict(params or {}))
    declared = notebook.declared_parameters(src)
    argv = kernel.check_kernel(kernel_name)
    run_id = run_id or uuid.uuid4().hex[:12]
    run_dir = ws.artifacts / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    source_copy = run_dir / f"{src.stem}.source.ipynb"
    shutil.copyfile(src, source_copy)
    effective = {k: v["default"] for k, v in (declared or {}).items()} | given
    record: dict[str, Any] = {
        "notebook": str(src), "notebook_hash": notebook.file_hash(source_copy),
        "source_copy": str(source_copy), "run_dir": str(run_dir), "params": effective,
        "given_params": given, "kernel": {"name": kernel_name, "executable": argv[0]},
        "cwd": str(cwd or src.parent), "kernel_env": dict(kernel_env or {}), "timeout": timeout, "retries": retries, "progress": progress,
        "started_at": time.time(), "pid": os.getpid(), "warnings": [],
        **(extra or {}),
    }
    if declared is None:
        record["warnings"].append("notebook has no 'parameters' cell")
    trace = Trace(f"pipeline {src.name}", **{"cellops.notebook": str(src), "cellops.run_id": run_id})
    record["trace_id"] = trace.trace_id
    ws.record_run(KIND, record, name=name or src.stem, status="running", run_id=run_id)
    with ws.heartbeat(run_id):  # a SIGKILL stops the beats: readers then show the run as dead
        try:
            status = _attempts(record, source_copy, run_dir / f"{src.stem}.ipynb", given, retries,
                               ws, run_id, trace)
        except BaseException as e:  # SIGTERM/Ctrl-C: keep the record honest, then stop
            record["error"] = {"kind": "interrupted", "message": f"run interrupted ({type(e).__name__})"}
            _finish(ws, run_id, record, "failed", run_dir / f"{src.stem}.ipynb", out_dir, trace)
            raise
        return _finish(ws, run_id, record, status, run_dir / f"{src.stem}.ipynb", out_dir, trace)


def _attempts(record: dict[str, Any], source: Path, output: Path, params: dict[str, Any],
              retries: int, ws: Workspace, run_id: str, trace: Trace) -> str:
    record["attempts"] = []
    values_path = output.parent / "values.jsonl"
    for attempt in range(retries + 1):
        values_path.unlink(missing_ok=True)
        span = trace.start_span(f"attempt {attempt + 1}", "chain")
        cells = CellSpans(trace, span, output.parent)  # the kernel's spans nest under each cell
        env = {"CELLOPS_BATCH": "1", ENV_VALUES: str(values_path), "CELLOPS_PIPELINE_RUN": run_id,
               "CELLOPS_NOTEBOOK": record["notebook"],  # the records the kernel makes name it
               "CELLOPS_HOME": str(ws.root), "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),
               **cells.env(), **tracking.child_env(), **record["kernel_env"]}
        t0 = time.time()
        try:
            error = execute(source, output, params, record["kernel"]["name"], env,
                            Path(record["cwd"]), record["timeout"], record.get("progress", False), cells)
        finally:
            cells.close()
        if error is not None:
            span.status, span.attrs["error"] = "error", error["message"]
        trace.end_span(span)
        record["attempts"].append({"attempt": attempt + 1, "started_at": t0,
                                   "duration_s": round(time.time() - t0, 3),
                                   "status": "ok" if error is None else "failed", "error": error})
        record["error"] = error
        if error is None:
            return "ok"
    return "failed"


def execute(source: Path, output: Path, params: dict[str, Any], kernel_name: str,
            env: dict[str, str], cwd: Path, timeout: float | None,
            progress: bool = False, cells: CellSpans | None = None) -> dict[str, Any] | None:
    """One papermill execution; None when every cell ran, else what went wrong and where."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    kernel.register_engine()
    deadline = time.time() + timeout if timeout else None
    try:
        pm.execute_notebook(
            str(source), str(output), parameters=params or None, engine_name=kernel.ENGINE,
            kernel_name=kernel_name, language=notebook.language(source), progress_bar=progress,
            cwd=str(cwd), cellops_env=env,
            cellops_deadline=deadline, cellops_cells=cells,
        )
        return None
    except pm.PapermillExecutionError as e:
        cell = _failed_cell(output)
        timed_out = deadline is not None and time.time() >= deadline - 0.5
        if timed_out or e.ename == "PipelineTimeout":
            return {"kind": "timeout", "cell": cell, "ename": "PipelineTimeout",
                    "message": f"timed out after {timeout:g}s in code cell {_n(cell)}"}
        return {"kind": "cell_error", "cell": cell, "ename": e.ename, "evalue": str(e.evalue)[:2000],
                "message": f"code cell {_n(cell)} raised {e.ename}: {e.evalue}"[:500]}
    except DeadKernelError:
        cell = _mark_dead(output)
        return {"kind": "kernel_died", "cell": cell, "ename": "DeadKernelError",
                "message": f"the kernel died in code cell {_n(cell)}; partial notebook kept"}
    except CellTimeoutError:
        return {"kind": "timeout", "cell": _failed_cell(output), "ename": "PipelineTimeout",
                "message": f"timed out after {timeout:g}s"}
    except RuntimeError as e:  # e.g. the kernel did not start in time
        return {"kind": "kernel_error", "cell": None, "message": f"kernel failed: {e}"[:500]}


def _n(cell: int | None) -> str:
    return "?" if cell is None else str(cell + 1)


def _load_output(output: Path) -> Any:
    import nbformat

    try:
        return nbformat.read(str(output), as_version=4)
    except (OSError, ValueError):
        return None


def _failed_cell(output: Path) -> int | None:
    """0-based index among code cells of the cell papermill marked as raising."""
    nb = _load_output(output)
    for i, c in enumerate(code_cells(nb) if nb is not None else []):
        if c.get("metadata", {}).get("papermill", {}).get("exception"):
            return i
    return None


def _mark_dead(output: Path) -> int | None:
    """The cell the kernel died in (the last one started), marked so readers of the kept
    partial notebook see where it stopped (papermill marks it 'completed')."""
    import nbformat

    nb = _load_output(output)
    if nb is None:
        return None
    started = [i for i, c in enumerate(code_cells(nb))
               if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return None
    cell = code_cells(nb)[started[-1]]
    cell.metadata.setdefault("papermill", {}).update(status="failed", exception=True)
    cell.outputs.append(nbformat.v4.new_output(
        "error", ename="DeadKernelError", evalue="the kernel died while running this cell",
        traceback=["DeadKernelError: the kernel died while running this cell"]))
    nbformat.write(nb, str(output))
    return started[-1]


def to_html(nb_path: Path) -> Path | None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(nb_path))
    dest = nb_path.with_suffix(".html")
    dest.write_text(body, encoding="utf-8")
    return dest


def _finish(ws: Workspace, run_id: str, record: dict[str, Any], status: str, output: Path,
            out_dir: str | Path | None, trace: Trace) -> PipelineRun:
    record["finished_at"] = time.time()
    record["duration_s"] = round(record["finished_at"] - record["started_at"], 3)
    values = read_values(output.parent / "values.jsonl")
    record["values"], record["metrics"] = values, metrics_of(values)
    record.update(provenance.touched(ws, run_id))
    record["env"] = environment().to_dict()
    nb = _load_output(output)
    record["output_notebook"] = str(output) if nb is not None else None
    record["output_html"] = None
    if nb is not None:
        record["cell_hashes"] = output_hashes(nb)
        record["output_hash"] = hashlib.sha256("".join(record["cell_hashes"]).encode()).hexdigest()
        try:
            record["output_html"] = str(to_html(output))
        except Exception as e:  # noqa: BLE001 -- an HTML copy must never fail the run itself
            record["warnings"].append(f"HTML export failed: {type(e).__name__}: {e}")
    if out_dir is not None:
        try:
            _copy_out(record, Path(out_dir))
        except OSError as e:  # the run happened: its record must still be written
            record["warnings"].append(f"copy to {out_dir} failed: {e}")
    record |= _log_tracker(ws, run_id, record, status)
    ws.update_run(run_id, status=status, **record)
    trace.end(status="error" if status != "ok" else None)
    traces.save(ws, trace, run_id)
    return PipelineRun(run_id, status, record)


def check_out_dir(out_dir: str | Path | None) -> None:
    """Refuse, before anything runs, an output folder that is a file."""
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise InvalidInputError(f"--out {out_dir} is a file, not a folder; give a folder for the executed notebook")


def _copy_out(record: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for key in ("output_notebook", "output_html"):
        if record.get(key):
            dest = out_dir / Path(record[key]).name
            shutil.copyfile(record[key], dest)
            record[key + "_run_dir"] = record[key]
            record[key] = str(dest.resolve())


def _log_tracker(ws: Workspace, run_id: str, record: dict[str, Any], status: str) -> dict[str, str | None]:
    from ..tracking import tracker, tracker_run

    cited = tracker_run(ws.root, job_type="pipeline")
    if cited["tracker_run_id"]:
        tracker.log({f"pipeline/{k}": v for k, v in record["metrics"].items()}
                    | {"pipeline/run_id": run_id, "pipeline/status": status})
    return cited
