"""The compare grid: prompt versions x models over cases.

Everything is rendered (and every case checked for its variables) before the first model call,
so a bad row fails fast with its name. Calls then go through the same guarded path as %%prompt
(``calls.guarded_generate``) and the workspace response cache. Backends that allow it
(``supports_concurrency``: HTTP endpoints) get a thread pool; in-process backends (llama.cpp,
transformers) share ONE serial lane, because running two CPU/GPU-bound models at once in this
process only oversubscribes the cores. A cell whose model fails (a CellopsError: an endpoint down,
a prompt too long for the context) shows that one line; the rest of the grid completes. Any other
exception is a bug and propagates with its traceback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from ..calls import guarded_generate
from ..errors import CellopsError, InvalidInputError
from ..guard import active_policy
from ..models import GenParams, get_llm
from ..models.tasks import model_for
from ..tracking import Trace, traces, tracker, tracker_run
from ..workspace import Workspace, get_workspace
from . import assertions, store
from .cache import CachedLLM, CacheStats
from .cases import Case, load_cases
from .grid import Cell, Column, CompareResult
from .run import resolve_call

OnCell = Callable[[Cell], None]
DEFAULT_WORKERS = 4


@dataclass
class Task:
    case: int
    column: int
    messages: list[dict[str, str]]
    params: GenParams


@dataclass
class Plan:
    """Columns, cases and every rendered call, ready to run (``prepare`` builds it)."""

    columns: list[Column]
    cases: list[Case]
    tasks: list[Task]
    workspace: Workspace
    cache: bool = True
    workers: int = DEFAULT_WORKERS
    grader: assertions.Grader | None = None

    def execute(self, on_cell: OnCell | None = None,
                on_trace: Callable[[Trace], None] | None = None) -> CompareResult:
        """Run every cell; ``on_cell`` is called in this thread as each one completes;
        ``on_trace(trace)`` before the first cell starts (a live view subscribes to it there:
        the cells' spans start and end in worker threads)."""
        ws, stats = self.workspace, CacheStats()
        t0 = time.perf_counter()
        trace = Trace("prompt grid", **{"cellops.columns": [f"{c.requested} · {c.model}" for c in self.columns],
                                        "cellops.cases": len(self.cases)})
        if on_trace is not None:
            on_trace(trace)
        llms = {c.model: CachedLLM(get_llm(c.model, ws), ws, stats, enabled=self.cache)
                for c in self.columns}
        for llm in llms.values():
            llm.weights_hash()  # once, before the threads start
        policy = active_policy(ws)
        grader = self.grader or assertions.default_grader(ws)
        grid: list[list[Cell | None]] = [[None] * len(self.columns) for _ in self.cases]
        serial = ThreadPoolExecutor(1, thread_name_prefix="cellops-grid-serial")
        pool = ThreadPoolExecutor(max(1, self.workers), thread_name_prefix="cellops-grid")
        try:
            futures: list[Future[Cell]] = []
            # The serial lane goes model by model: alternating two in-process models call by call
            # costs 5-10% (their weights keep evicting each other from the CPU caches).
            order = sorted(self.tasks, key=lambda t: (
                llms[self.columns[t.column].model].supports_concurrency,
                self.columns[t.column].model, t.column, t.case))
            for t in order:
                llm = llms[self.columns[t.column].model]
                lane = pool if llm.supports_concurrency else serial
                asserts = self.cases[t.case].asserts or None
                futures.append(lane.submit(_run_cell, t, llm, policy, asserts, ws, grader, t0,
                                           trace, self.columns[t.column], self.cases[t.case]))
            for fut in as_completed(futures):
                cell = fut.result()
                grid[cell.case][cell.column] = cell
                if on_cell is not None:
                    on_cell(cell)
        finally:
            serial.shutdown(wait=True, cancel_futures=True)
            pool.shutdown(wait=True, cancel_futures=True)
            traces.save(ws, trace)  # record() links the run once it has an id
        cells = [[c for c in row if c is not None] for row in grid]
        params = self.tasks[0].params.to_dict() if self.tasks else {}
        return CompareResult(self.columns, self.cases, cells, stats, time.perf_counter() - t0, params,
                             trace_id=trace.trace_id)


def _error_text(e: CellopsError) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def _run_cell(t: Task, llm: CachedLLM, policy: Any, asserts: list[dict[str, Any]] | None,
              ws: Workspace, grader: assertions.Grader, grid_t0: float, trace: Trace,
              column: Column, case: Case) -> Cell:
    """One grid cell inside its own span (worker threads parent it to the grid's root)."""
    with trace.span(f"cell {case.number} · {column.requested} · {column.model}", kind="chain",
                    **{"cellops.case": case.number, "cellops.prompt": column.prompt.ref,
                       "gen_ai.request.model": column.model}) as span:
        cell = _call_cell(t, llm, policy, asserts, ws, grader, grid_t0, trace)
        if cell.error is not None:
            span.status, span.attrs["error"] = "error", cell.error
        for c in cell.checks or []:
            span.add_event("assertion", type=c.type, passed=bool(c.passed), reason=c.reason)
    return cell


def _call_cell(t: Task, llm: CachedLLM, policy: Any, asserts: list[dict[str, Any]] | None,
               ws: Workspace, grader: assertions.Grader, grid_t0: float, trace: Trace) -> Cell:
    t0 = time.perf_counter()
    cell = Cell(t.case, t.column, t.messages, start_s=t0 - grid_t0)
    try:
        r = guarded_generate(llm, t.messages, t.params, trace=trace, policy=policy)
    except CellopsError as e:  # this cell shows the error; the other cells still run
        cell.error = _error_text(e)
        cell.checks = [] if asserts else None
        cell.wall_s = time.perf_counter() - t0
        return cell
    g = r.generation
    cell.output, cell.blocked, cell.messages = r.text, r.blocked, r.messages
    if g is not None:
        cell.latency_s, cell.cached = g.latency_s, bool(g.meta.get("cached"))
        cell.prompt_tokens, cell.completion_tokens = g.prompt_tokens, g.completion_tokens
    if asserts:
        cell.checks = [_check(a, r.text, g, ws, grader) for a in asserts]
    cell.wall_s = time.perf_counter() - t0
    return cell


def _check(a: dict[str, Any], output: str, g: Any, ws: Workspace,
           grader: assertions.Grader) -> assertions.Check:
    try:
        return assertions.evaluate(a, output, g, workspace=ws, grader=grader)
    except CellopsError as e:  # a grader model that fails fails this assertion, not the grid
        return assertions.Check(a["type"], a.get("value"), False, f"could not evaluate: {_error_text(e)}")


_UNDEFINED = re.compile(r"undefined variable '([^']+)'")


def prepare(
    refs: Sequence[str | store.Prompt], models: Sequence[str | None] | None = None, on: Any = None, *,
    params: dict[str, Any] | None = None, variables: dict[str, Any] | None = None,
    cache: bool = True, workers: int = DEFAULT_WORKERS, workspace: Workspace | None = None,
    grader: assertions.Grader | None = None,
) -> Plan:
    """Resolve versions (aliases too), load cases and render every call; nothing runs yet."""
    ws = workspace or get_workspace()
    if isinstance(refs, str | store.Prompt):
        refs = [refs]
    if not refs:
        raise InvalidInputError("compare needs at least one prompt version, e.g. qa@1 qa@2")
    prompts = [r if isinstance(r, store.Prompt) else store.get(r, ws) for r in refs]
    requested = [r.ref if isinstance(r, store.Prompt) else r for r in refs]
    cases = on if isinstance(on, list) and on and isinstance(on[0], Case) else load_cases(on, ws)
    assertions.validate_cases(cases)
    model_list = list(models) if models else [None]
    columns: list[Column] = []
    tasks: list[Task] = []
    base = dict(variables or {})
    for p, req in zip(prompts, requested, strict=True):
        for m in model_list:
            j = len(columns)
            uri = None
            for i, case in enumerate(cases):
                messages, uri, gp = _render(p, case, base, m, params)
                tasks.append(Task(i, j, messages, gp))
            columns.append(Column(req, p, uri or model_for("prompt", m or p.params.get("model"))))
    tasks.sort(key=lambda t: (t.case, t.column))  # HTTP pools fill the live view row by row
    return Plan(columns, cases, tasks, ws, cache, workers, grader)


def _render(p: store.Prompt, case: Case, base: dict[str, Any], model: str | None,
            params: dict[str, Any] | None) -> tuple[list[dict[str, str]], str, GenParams]:
    try:
        return resolve_call(p, base | case.vars, model, params)
    except InvalidInputError as e:
        m = _UNDEFINED.search(str(e))
        if m is None:
            raise InvalidInputError(f"case {case.number} ({case.where}), {p.ref}: {e}") from None
        have = ", ".join(case.vars) or "none"
        raise InvalidInputError(
            f"case {case.number} ({case.where}) has no value for '{m.group(1)}' used by {p.ref}; "
            f"add a '{m.group(1)}' column/key to the cases (it has: {have})"
        ) from None


def record(result: CompareResult, ws: Workspace, kind: str, source: str,
           name: str | None = None, version: int | None = None, status: str = "ok",
           extra: dict[str, Any] | None = None) -> str:
    """Store the grid as one run (cells with messages + outputs: what feedback export needs)."""
    rec = {
        "source": source,
        "columns": [{"requested": c.requested, "prompt": c.prompt.ref, "prompt_hash": c.prompt.hash,
                     "model": c.model} for c in result.columns],
        "cases": [{"number": c.number, "where": c.where, "description": c.description,
                   "vars": {k: repr(v)[:500] for k, v in c.vars.items()}} for c in result.cases],
        "cells": [cell.to_dict() for row in result.cells for cell in row],
        "params": result.params, "cache": result.stats.to_dict(), "wall_s": result.wall_s,
        "errors": result.errors, **tracker_run(ws.root), "trace_id": result.trace_id,
        **(extra or {}),
    }
    if name is None:
        names = {c.prompt.name for c in result.columns}
        name = names.pop() if len(names) == 1 else None
    result.run_id = ws.record_run(kind, rec, name, version, status=status)
    if result.trace_id is not None:
        traces.link_run(ws, result.trace_id, result.run_id)
    return result.run_id


def compare_grid(
    refs: Sequence[str | store.Prompt], models: Sequence[str | None] | None = None, on: Any = None, *,
    params: dict[str, Any] | None = None, variables: dict[str, Any] | None = None, cache: bool = True,
    workers: int = DEFAULT_WORKERS, workspace: Workspace | None = None, on_cell: OnCell | None = None,
    source: str = "python",
) -> CompareResult:
    """Run the grid and record it; returns the CompareResult (HTML view, ``to_frame()``)."""
    plan = prepare(refs, models, on, params=params, variables=variables, cache=cache,
                   workers=workers, workspace=workspace)
    return run_plan(plan, on_cell=on_cell, source=source)


def run_plan(plan: Plan, on_cell: OnCell | None = None, source: str = "python",
             on_trace: Callable[[Trace], None] | None = None) -> CompareResult:
    result = plan.execute(on_cell, on_trace)
    record(result, plan.workspace, "prompt_compare", source)
    cols, rows = result.long_rows()
    tracker.log({"prompt_compare/run_id": result.run_id, "prompt_compare/cells": len(rows),
                 "prompt_compare/cache_hits": result.stats.hits,
                 "prompt_compare/errors": result.errors, "prompt_compare/wall_s": result.wall_s},
                tables={"prompt_compare/grid": (cols, rows)})
    return result


def compare(
    refs: Sequence[str | store.Prompt], models: Sequence[str | None] | None = None, on: Any = None, *,
    params: dict[str, Any] | None = None, variables: dict[str, Any] | None = None, cache: bool = True,
    workers: int = DEFAULT_WORKERS, workspace: Workspace | None = None,
) -> Any:
    """``cellops.prompts.compare(["qa@1", "qa@2"], models=[...], on=cases)`` -> DataFrame.

    One row per case: the case's variables, then per column (``"qa@2 · default"``) the output
    and ``<column> latency_s | tokens | cached | error`` (``passed`` when cases carry assertions).
    ``df.attrs`` holds ``run_id``, ``cache`` (hits/misses) and ``wall_s``.
    """
    return compare_grid(refs, models, on, params=params, variables=variables, cache=cache,
                        workers=workers, workspace=workspace).to_frame()
