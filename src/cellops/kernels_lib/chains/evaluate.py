"""Chain versions in the compare grid (versions x models x cases) and ``test`` with assertions.

The same cases, assertions, grid cells and views as prompts (``prompts.cases``,
``prompts.assertions``, ``prompts.grid``): a column is a chain version x model, a cell is one chain
run on one case (its own trace). An assertion may carry ``step: NAME`` to check that step's output
instead of the chain's output. Everything is validated before the first run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InvalidInputError
from ..models.base import Generation
from ..models.tasks import model_for
from ..prompts import assertions
from ..prompts.cache import CacheStats
from ..prompts.cases import Case, load_cases
from ..prompts.compare import record
from ..prompts.grid import Cell, Column, CompareResult
from ..prompts.testing import PromptTestFailed, TestReport
from ..tracking import Trace, traces, tracker
from ..workspace import Workspace, get_workspace
from . import store
from .context import Resolver, as_text
from .result import ChainRun, ChainStepError
from .runner import run


class ChainTestFailed(PromptTestFailed):
    """A chain's assertions failed; ``.report`` holds the TestReport."""


class ChainTestReport(TestReport):
    WHAT = "chain"


def _target(a: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    return a.get("step"), {k: v for k, v in a.items() if k != "step"}


def check_cases(cases: list[Case], chains: Sequence[store.Chain]) -> None:
    """Assertion shapes, ``step:`` targets and inputs of every case, for every chain."""
    for case in cases:
        for j, a in enumerate(case.asserts, start=1):
            where = f"test case {case.number} ({case.where}), assertion {j}"
            step, rest = _target(a) if isinstance(a, dict) else (None, a)
            assertions.validate(rest, where)
            for c in chains:
                names = [s.name for s in c.spec.steps]
                if step is not None and step not in names:
                    raise InvalidInputError(f"{where}: step '{step}' is not a step of {c.ref}; its steps: "
                                            + ", ".join(names))
        for c in chains:
            missing = [n for n in c.spec.required if n not in case.vars]
            if missing:
                raise InvalidInputError(f"case {case.number} ({case.where}) has no value for input "
                                        f"'{missing[0]}' of {c.ref}; add it to the case's vars")


def _cases(on: Any) -> list[Case]:
    return on if isinstance(on, list) and on and isinstance(on[0], Case) else load_cases(on)


def _checks(case: Case, r: ChainRun, ws: Workspace) -> list[assertions.Check]:
    out = []
    for a in case.asserts:
        step, rest = _target(a)
        value = r.steps.get(step) if step else r.output
        res = next((x for x in r.results if x.name == step), None) if step else None
        latency = res.latency_s if res is not None else r.wall_s
        gen = Generation(as_text(value), r.model or "", 0, 0, latency)
        try:
            check = assertions.evaluate(rest, as_text(value), gen, workspace=ws)
        except Exception as e:  # a grader that fails fails this assertion, not the grid
            check = assertions.Check(rest["type"], rest.get("value"), False, f"could not evaluate: {e}")
        if step:
            check.reason = f"step {step}: {check.reason}"
        out.append(check)
    return out


def _cell(case: Case, i: int, j: int, col: Column, ws: Workspace, resolver: Resolver | None,
          cache: bool, stats: CacheStats, base: dict[str, Any], grid_t0: float) -> Cell:
    t0 = time.perf_counter()
    cell = Cell(i, j, [], start_s=t0 - grid_t0)
    chain: store.Chain = col.prompt  # type: ignore[assignment]  # a column holds a chain here
    inputs = base | case.vars
    if chain.spec.inputs:
        inputs = {k: v for k, v in inputs.items() if k in chain.spec.inputs}
    try:
        r = run(chain, inputs, col.model, workspace=ws, resolver=resolver, cache=cache, stats=stats,
                source="compare", record=False)
    except ChainStepError as e:
        cell.error, cell.checks = str(e), ([] if case.asserts else None)
        cell.wall_s = time.perf_counter() - t0
        return cell
    cell.output, cell.latency_s = as_text(r.output), r.wall_s
    cell.completion_tokens = sum(x.tokens for x in r.results)
    cell.blocked = r.stopped_at if r.status == "blocked" else None
    cell.checks = _checks(case, r, ws) if case.asserts else None
    cell.wall_s = time.perf_counter() - t0
    return cell


def compare_grid(
    refs: Sequence[str | store.Chain], models: Sequence[str | None] | None = None, on: Any = None, *,
    variables: dict[str, Any] | None = None, cache: bool = True, workspace: Workspace | None = None,
    resolver: Resolver | None = None, on_cell: Callable[[Cell], None] | None = None,
    source: str = "python", kind: str = "chain_compare", record_it: bool = True,
    on_trace: Callable[[Trace], None] | None = None,
) -> CompareResult:
    """Chain versions x models over cases -> the same CompareResult (view, ``to_frame()``) as prompts.
    ``on_trace(trace)`` is called before the first cell runs (a live view subscribes there)."""
    ws = workspace or get_workspace()
    if isinstance(refs, str | store.Chain):
        refs = [refs]
    if not refs:
        raise InvalidInputError("compare needs at least one chain version, e.g. qa@1 qa@2")
    chains = [r if isinstance(r, store.Chain) else store.get(r, ws) for r in refs]
    cases = _cases(on)
    check_cases(cases, chains)
    columns = [Column(req if isinstance(req, str) else req.ref, c, model_for("prompt", m or c.spec.model))
               for req, c in zip(refs, chains, strict=True) for m in (list(models) if models else [None])]
    stats, t0 = CacheStats(), time.perf_counter()
    cells: list[list[Cell]] = []
    # one trace for the grid: each cell's chain run joins it as a child chain span
    trace = Trace("chain grid", **{"cellops.columns": [c.label for c in columns], "cellops.cases": len(cases)})
    if on_trace is not None:
        on_trace(trace)
    with trace:
        for i, case in enumerate(cases):
            row = []
            for j, col in enumerate(columns):
                row.append(_cell(case, i, j, col, ws, resolver, cache, stats, dict(variables or {}), t0))
                if on_cell is not None:
                    on_cell(row[-1])
            cells.append(row)
    traces.save(ws, trace)  # record() links the run once it has an id
    result = CompareResult(columns, cases, cells, stats, time.perf_counter() - t0, trace_id=trace.trace_id)
    if record_it:
        record(result, ws, kind, source)
    return result


def compare(refs: Sequence[str | store.Chain], models: Sequence[str | None] | None = None,
            on: Any = None, **kwargs: Any) -> Any:
    """``cellops.chains.compare(["qa@1", "qa@2"], models=[...], on=cases)`` -> DataFrame."""
    return compare_grid(refs, models, on, **kwargs).to_frame()


def test(
    ref: str | store.Chain, cases: Any = None, *, model: str | None = None,
    raise_on_failure: bool = False, cache: bool = True, workspace: Workspace | None = None,
    resolver: Resolver | None = None, source: str = "python",
    on_trace: Callable[[Trace], None] | None = None,
) -> ChainTestReport:
    """Run chain ``ref`` on its test cases (``tests:`` in the spec, or ``cases``) and check them."""
    ws = workspace or get_workspace()
    chain = ref if isinstance(ref, store.Chain) else store.get(ref, ws)
    if cases is None:
        cases = chain.spec.tests
        if not cases:
            raise InvalidInputError(f"chain {chain.ref} has no test cases; add a 'tests:' list to its "
                                    "YAML or pass --tests FILE (cases=[...] from Python)")
    loaded = _cases(cases)
    if not any(c.asserts for c in loaded):
        raise InvalidInputError(f"none of the {len(loaded)} test cases of {chain.ref} has an 'assert' "
                                "list; add e.g. assert: [{type: contains, value: ..., step: NAME}]")
    grid = compare_grid([chain], [model] if model else None, loaded, cache=cache, workspace=ws,
                        resolver=resolver, source=source, record_it=False, on_trace=on_trace)
    report = ChainTestReport(chain, grid.columns[0].model, grid)  # type: ignore[arg-type]
    record(grid, ws, "chain_test", source, chain.name, chain.version,
           status="passed" if report.ok else "failed",
           extra={"passed": report.passed, "failed": len(report.failures), "chain": chain.ref,
                  "model": report.model})
    tracker.log({"chain_test/run_id": report.run_id, "chain_test/chain": chain.ref,
                 "chain_test/passed": report.passed, "chain_test/failed": len(report.failures)})
    if raise_on_failure and not report.ok:
        raise ChainTestFailed(report.failure_line(), report)
    return report
