"""Prompt optimization: bad input in one line before any call, the budget meter's hard limits, and
a real small search with the embedded SmolLM2 (DSPy's BootstrapFewShot through the cellops
adapter, Optuna over system prompt / demos / params) whose held-out score is at least the
original's, within the call budget, with every trial traced and recorded."""

from __future__ import annotations

import pytest

from cellops.kernels_lib import prompts
from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.models.base import Generation, GenParams
from cellops.kernels_lib.prompts.budget import Budget, BudgetSpent, Meter
from cellops.kernels_lib.tracking import traces

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Egypt", "Cairo"),
            ("Spain", "Madrid"), ("Germany", "Berlin"), ("Russia", "Moscow")]


def capital_cases() -> list[dict]:
    return [{"vars": {"country": c}, "assert": [{"type": "icontains", "value": a},
                                                {"type": "max-length", "value": 40}]} for c, a in CAPITALS]


def test_bad_input_is_one_line_and_calls_nothing(workspace) -> None:
    prompts.save("cap", "What is the capital of {{country}}?", workspace=workspace)
    cases = capital_cases()
    with pytest.raises(InvalidInputError, match="at least 1 model call"):
        prompts.optimize("cap", cases, budget=0, workspace=workspace)
    bare = cases[:3] + [{"vars": {"country": "Peru"}}]
    with pytest.raises(InvalidInputError) as e:
        prompts.optimize("cap", bare, workspace=workspace)
    assert "case(s) 4 (item 3 of the list) have none" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InvalidInputError, match="unknown search dimension.*temperature"):
        prompts.optimize("cap", cases, search="system,temperature", workspace=workspace)
    with pytest.raises(InvalidInputError, match="--models URI,URI"):
        prompts.optimize("cap", cases, search="model", workspace=workspace)
    with pytest.raises(InvalidInputError, match=r"too small .* give at least --budget \d+"):
        prompts.optimize("cap", cases, budget=8, workspace=workspace)
    assert workspace.list_runs("prompt_optimize") == [] and len(prompts.history("cap", workspace)) == 1


def test_the_meter_refuses_a_call_that_might_not_fit() -> None:
    m = Meter(Budget(calls=3, tokens=450))
    msgs = [{"role": "user", "content": "x" * 40}]
    # 40 bytes + 8 template tokens + 20 answer tokens + what the template may add before any call
    reserved = m.reserve(msgs, GenParams(max_tokens=20))
    assert reserved == 40 + 8 + 256 + 20 and m.calls == 1
    m.settle(reserved, Generation("ok", "m", 60, 3, 0.1), 0.1, msgs)  # the template added 12 tokens
    assert m.tokens == 63 and m.overhead == 12  # the real count replaces the reservation
    with pytest.raises(BudgetSpent, match="up to 390 tokens; 387 of 450"):
        m.reserve(msgs, GenParams(max_tokens=330))
    assert m.reserve(msgs, GenParams(max_tokens=8)) == 40 + 8 + 12 + 8
    m.reserve(msgs, GenParams(max_tokens=1))
    with pytest.raises(BudgetSpent, match="3 model calls is spent"):
        m.reserve(msgs, GenParams(max_tokens=1))
    assert Budget.parse({"calls": 5, "seconds": 30}).describe() == "5 model calls, no token limit, 30 s"


@pytest.mark.slow
def test_optimized_version_holds_up_on_the_held_out_cases(workspace) -> None:
    prompts.save("cap", "What is the capital of {{country}}?", params={"max_tokens": 40}, workspace=workspace)
    r = prompts.optimize("cap", capital_cases(), search="system,fewshot,params", budget=36, holdout=0.3,
                         progress=False, workspace=workspace)
    assert r.n_holdout == 2 and r.n_train == 5
    assert r.score >= r.baseline_score
    assert 0 < r.used["calls"] <= 36 and len(r.trials) >= 2
    assert all(t.trace for t in r.trials if t.train_score is not None)
    assert r.trials[0].config["system"] is None and r.trials[0].train_score == r.baseline_train
    passed = [sp for sp in r.trials[0].trace if sp["name"] == "case" and sp["attrs"]["split"] == "train"
              and sp["attrs"].get("score") == 1.0]
    if passed:  # DSPy bootstrapped demonstrations from the passing train cases, and trials used them
        assert any(t.config["demos"] for t in r.trials[1:])
    if r.improved:  # the winner is a real new version, with its diff and a score table
        assert r.version == "cap@2" and prompts.get("cap@2", workspace).hash != prompts.get("cap@1", workspace).hash
        assert r.diff.startswith("--- cap@1") and r.train_score > r.baseline_train
    else:
        assert r.version == "cap@1" and r.score == r.baseline_score
    run = workspace.get_run(r.run_id)
    assert run["kind"] == "prompt_optimize" and len(run["record"]["trials"]) == len(r.trials)
    stored = traces.get(r.trace_id, workspace)  # one tree: a span per trial, a case span per call
    assert stored.root.name == "optimize cap@1"
    assert sum(sp.name == "trial" for sp in stored.spans) == len(r.trials) - 1
    assert sum(sp.name == "generate" or sp.kind == "llm" for sp in stored.spans) >= r.used["calls"]
    text = r._repr_mimebundle_()["text/plain"]
    assert "held-out score" in text and "cap@1 (original)" in text

