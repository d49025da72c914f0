"""Prompt test cases: run a version on its cases, check the assertions, fail a pipeline.

``test("qa@prod")`` uses the cases stored with the version (YAML after ``---`` in the %%prompt
cell, or ``--tests FILE``); ``cases=`` / a file path overrides them. With
``raise_on_failure=True`` (what ``%prompt test`` does in a papermill run, CELLOPS_BATCH=1) any
failed assertion raises :class:`PromptTestFailed`, so the pipeline exits non-zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from .. import html
from ..errors import CellopsError, InvalidInputError
from ..tracking import tracker
from ..workspace import Workspace, get_workspace
from . import store
from .compare import DEFAULT_WORKERS, prepare, record
from .grid import CompareResult


class PromptTestFailed(CellopsError):
    """Assertions failed; ``.report`` holds the TestReport."""

    def __init__(self, message: str, report: TestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class TestReport:
    __test__ = False  # not a pytest test class
    WHAT = "prompt"  # what was tested (chains.evaluate reuses this report with "chain")

    prompt: store.Prompt
    model: str
    grid: CompareResult

    @property
    def run_id(self) -> str | None:
        return self.grid.run_id

    @property
    def results(self) -> list[dict[str, Any]]:
        """One row per assertion (an errored case is one failed row)."""
        out = []
        for case, (cell,) in self.grid.rows():
            if cell.error is not None:
                out.append({"case": case.number, "description": case.label, "assertion": "(model call)",
                            "passed": False, "reason": cell.error, "score": None, "output": None})
            for c in cell.checks or []:
                out.append({"case": case.number, "description": case.label, "assertion": c.label,
                            "passed": c.passed, "reason": c.reason, "score": c.score,
                            "output": cell.output})
        return out

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["passed"]]

    @property
    def passed(self) -> int:
        return sum(r["passed"] for r in self.results)

    @property
    def ok(self) -> bool:
        return not self.failures

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        n = len(self.results)
        verdict = "PASSED" if self.ok else "FAILED"
        run = f" · run {self.run_id}" if self.run_id else ""
        return (f"{verdict} {self.prompt.ref} on {self.model}: {self.passed}/{n} assertions passed "
                f"over {len(self.grid.cases)} cases · {self.grid.stats}{run}")

    def failure_line(self, limit: int = 3) -> str:
        """One line naming the failures (the PromptTestFailed message)."""
        f = self.failures
        named = "; ".join(f"case {r['case']} {r['assertion']}: {r['reason'][:80]}" for r in f[:limit])
        more = f" (+{len(f) - limit} more)" if len(f) > limit else ""
        return (f"{self.WHAT} {self.prompt.ref} failed {len(f)} of {len(self.results)} assertions on "
                f"{self.model}: {named}{more}; see %{self.WHAT} test {self.prompt.ref}")

    def to_frame(self) -> Any:
        import pandas as pd

        df = pd.DataFrame(self.results)
        df.attrs.update({"run_id": self.run_id, "prompt": self.prompt.ref, "model": self.model})
        return df

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cols = ("case", "assertion", "result", "reason", "output")
        rows = [(r["case"], r["assertion"], "PASS" if r["passed"] else "FAIL", r["reason"],
                 (r["output"] or "").replace("\n", " ")[:80]) for r in self.results]
        marks = [[escape(str(r["case"])), escape(r["assertion"]),
                  "<span class='ok'>PASS</span>" if r["passed"] else "<span class='bad'>FAIL</span>",
                  html.pre(r["reason"]), html.pre((r["output"] or "")[:400])] for r in self.results]
        return {"text/plain": html.text_table(cols, rows) + "\n" + self.summary(),
                "text/html": html.box(f"{self.WHAT} test", html.table(cols, marks, raw=True), self.summary())}


def test(
    ref: str | store.Prompt, cases: Any = None, *, model: str | None = None,
    params: dict[str, Any] | None = None, variables: dict[str, Any] | None = None,
    raise_on_failure: bool = False, cache: bool = True, workers: int = DEFAULT_WORKERS,
    workspace: Workspace | None = None, source: str = "python",
    on_trace: Callable[[Any], None] | None = None,
) -> TestReport:
    """Run prompt ``ref`` on its test cases and check every assertion.

    ``cases``: None (the cases saved with the version), a list of ``{"vars", "assert"}`` dicts, a
    DataFrame, or a .yaml/.json/.jsonl/.csv path. Returns a TestReport (``.ok``, ``.failures``,
    ``.to_frame()``); raises PromptTestFailed when ``raise_on_failure`` and anything failed.
    ``on_trace(trace)`` is called before the first case runs (a live view subscribes there).
    """
    ws = workspace or get_workspace()
    prompt = ref if isinstance(ref, store.Prompt) else store.get(ref, ws)
    if cases is None:
        cases = prompt.tests
        if not cases:
            raise InvalidInputError(
                f"prompt {prompt.ref} has no test cases; add them after a '---' line in its %%prompt "
                "cell, or pass --tests FILE (cases=[...] from Python)"
            )
    plan = prepare([prompt], [model] if model else None, cases, params=params, variables=variables,
                   cache=cache, workers=workers, workspace=ws)
    if not any(c.asserts for c in plan.cases):
        raise InvalidInputError(f"none of the {len(plan.cases)} test cases of {prompt.ref} has an "
                                "'assert' list; add e.g. assert: [{type: contains, value: ...}]")
    report = TestReport(prompt, plan.columns[0].model, plan.execute(on_trace=on_trace))
    record(report.grid, ws, "prompt_test", source, prompt.name, prompt.version,
           status="passed" if report.ok else "failed",
           extra={"passed": report.passed, "failed": len(report.failures), "prompt": prompt.ref,
                  "model": report.model})
    rows = report.results
    cols = ["case", "description", "assertion", "passed", "reason", "score", "output"]
    tracker.log({"prompt_test/run_id": report.run_id, "prompt_test/prompt": prompt.ref,
                 "prompt_test/passed": report.passed, "prompt_test/failed": len(report.failures)},
                tables={"prompt_test/results": (cols, [[r[c] for c in cols] for r in rows])})
    if raise_on_failure and not report.ok:
        raise PromptTestFailed(report.failure_line(), report)
    return report
