"""llm-rubric graded by a real model: the judge task's model (qwen-0.5b, which CI pulls; the
embedded 135M cannot grade: on these cases it answers neither PASS nor FAIL or the wrong one),
resolved through models/tasks.py like a user's `%config Cellops.judge_model`. The cases are ones
the 0.5B grades right under greedy decoding; it passes most outputs, so the failing case is a
plain factual contradiction of the rubric."""

from __future__ import annotations

import pytest

from cellops.kernels_lib.models import catalog, tasks
from cellops.kernels_lib.prompts import assertions as A

RUBRIC = {"type": "llm-rubric", "value": "The output says that the capital of France is Paris."}


@pytest.mark.slow
def test_a_real_judge_passes_the_right_output_and_fails_the_wrong_one(monkeypatch: pytest.MonkeyPatch) -> None:
    if not catalog.is_pulled(catalog.CATALOG["qwen2.5-coder-0.5b"]):
        pytest.skip("qwen2.5-coder-0.5b is not pulled (cellops models pull qwen2.5-coder-0.5b)")
    monkeypatch.setenv("CELLOPS_JUDGE_MODEL", "qwen-0.5b")
    assert tasks.model_for("judge") == "qwen-0.5b"
    A.validate(RUBRIC, "t")
    right = A.evaluate(RUBRIC, "The capital of France is Paris.", None)
    wrong = A.evaluate(RUBRIC, "The capital of France is Berlin.", None)
    assert right.passed and right.reason.startswith("grader qwen-0.5b: PASS"), right.reason
    assert not wrong.passed and wrong.reason.startswith("grader qwen-0.5b: FAIL"), wrong.reason
    assert (right.score, wrong.score) == (1.0, 0.0)
