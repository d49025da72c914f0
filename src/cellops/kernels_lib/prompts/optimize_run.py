"""Scoring one candidate prompt on cases: render -> guarded generate -> the case's assertions.

A candidate is the prompt version with a system prompt, few-shot demonstrations, inference
parameters and a model swapped in. It is never saved while it is searched: an in-memory
:class:`~.store.Prompt` renders it, through the same ``resolve_call`` and guarded call path as
``%prompt test``. Every call of every case is a span of the trial's trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..calls import guarded_generate
from ..errors import CellopsError
from ..tracking import Trace
from . import assertions, store
from .budget import BudgetSpent
from .cases import Case
from .run import resolve_call

RAW_OPEN, RAW_CLOSE = "{% raw %}", "{% endraw %}"


@dataclass(frozen=True)
class Demo:
    """A bootstrapped demonstration: a passing train case's rendered input and the model's answer."""

    case: int  # the train case it came from (never shown to that case itself)
    user: str
    output: str


@dataclass(frozen=True)
class Candidate:
    system: str | None
    demos: tuple[Demo, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)  # temperature / top_p / max_tokens overrides
    model: str | None = None  # None: the prompt's own model

    def template(self, base: str) -> str:
        """The template with the demonstrations in front (a Jinja raw block: shown verbatim)."""
        if not self.demos:
            return base
        block = "\n\n".join(f"Example input:\n{d.user}\nExample answer:\n{d.output}" for d in self.demos)
        return f"{RAW_OPEN}{block}\n\nNow answer this one.\n{RAW_CLOSE}{base}"

    def prompt(self, base: store.Prompt, exclude_case: int | None = None) -> store.Prompt:
        """An unsaved Prompt for this candidate (without the demo taken from ``exclude_case``)."""
        cand = self
        if exclude_case is not None and any(d.case == exclude_case for d in self.demos):
            cand = replace(self, demos=tuple(d for d in self.demos if d.case != exclude_case))
        params = {**base.params, **cand.params, **({"model": cand.model} if cand.model else {})}
        return replace(base, template=cand.template(base.template), system=cand.system, params=params)

    def describe(self) -> dict[str, Any]:
        return {"system": self.system, "demos": [d.case for d in self.demos], **self.params,
                **({"model": self.model} if self.model else {})}


@dataclass
class CaseResult:
    case: int
    output: str | None
    score: float  # fraction of the case's assertions that passed (0 on a failed call)
    checks: list[assertions.Check]
    messages: list[dict[str, str]]
    error: str | None = None


@dataclass
class Scorer:
    """Everything a trial needs to call models and grade answers."""

    base: store.Prompt
    llm_for: Callable[[str], Any]  # model URI -> metered, cached LLM
    policy: Any
    workspace: Any
    grader: assertions.Grader
    variables: dict[str, Any] = field(default_factory=dict)
    on_call: Callable[[], None] | None = None

    def run(self, cand: Candidate, cases: list[Case], trace: Trace, split: str) -> list[CaseResult]:
        return [self._case(cand, c, trace, split) for c in cases]

    def _case(self, cand: Candidate, case: Case, trace: Trace, split: str) -> CaseResult:
        prompt = cand.prompt(self.base, exclude_case=case.number)
        messages, uri, gp = resolve_call(prompt, self.variables | case.vars, None, None)
        with trace.span("case", "chain", case=case.number, split=split, **{"gen_ai.request.model": uri}) as span:
            try:
                r = guarded_generate(self.llm_for(uri), messages, gp, trace=trace, policy=self.policy)
            except BudgetSpent:
                raise
            except Exception as e:  # a failing model call scores 0 on this case; the search goes on
                msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                span.attrs["error"] = msg if isinstance(e, CellopsError) else f"{type(e).__name__}: {msg}"
                return CaseResult(case.number, None, 0.0, [], messages, span.attrs["error"])
            finally:
                if self.on_call is not None:
                    self.on_call()
            checks = [self._check(a, r.text, r.generation) for a in case.asserts]
            score = sum(c.passed for c in checks) / len(checks)
            span.attrs["score"] = score
            span.attrs["output.value"] = r.text[:500]
        return CaseResult(case.number, r.text, score, checks, r.messages)

    def _check(self, a: dict[str, Any], output: str, gen: Any) -> assertions.Check:
        try:
            return assertions.evaluate(a, output, gen, workspace=self.workspace, grader=self.grader)
        except BudgetSpent:
            raise
        except Exception as e:  # a grader that fails fails this assertion, not the search
            return assertions.Check(a["type"], a.get("value"), False, f"could not evaluate: {e}")


def mean_score(results: list[CaseResult]) -> float:
    return sum(r.score for r in results) / len(results) if results else 0.0
