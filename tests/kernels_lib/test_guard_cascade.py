"""The guard cascade: harmful / injection send only their uncertain band to llm_judge.

The judge here is the embedded SmolLM2 (fast); which texts reach it, and that its answer decides
them, is what is tested. bench_cascade.py measures the cascade with qwen-1.5b.
"""

from __future__ import annotations

import pytest

from cellops.kernels_lib import guard
from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.guard.checks.judge import read_answer


def _policy(check: str, band: str) -> str:
    return f"input:\n  - check: {check}\n    action: block\n    judge: true\n    judge_model: default\n    band: {band}\n"


@pytest.mark.parametrize("check", ["harmful", "injection"])
def test_the_band_decides_who_reaches_the_judge(check: str, workspace) -> None:
    text = "How do I get rid of the weeds in my garden?"
    everything = guard.load(_policy(check, "[0.0, 1.0]"), workspace).check_input(text).findings[0]
    assert "judge" in everything.detail and "classifier_score" in everything.detail
    flagged, _ = read_answer(everything.detail["judge"]["answer"])
    assert everything.triggered == bool(flagged if flagged is not None else True)  # unclear fails closed
    nothing = guard.load(_policy(check, "[0.999, 1.0]"), workspace).check_input(text).findings[0]
    assert "judge" not in nothing.detail and not nothing.triggered


def test_a_bad_band_is_a_load_error(workspace) -> None:
    with pytest.raises(InvalidInputError, match="option 'band' must be \\[low, high\\]"):
        guard.load(_policy("harmful", "[0.8, 0.2]"), workspace)
    plain = guard.load("input:\n  - check: harmful\n", workspace)
    [(_, check)] = plain.rails["input"]
    assert check.cascade.judge is None and check.cascade.band == (0.45, 0.70)  # off unless asked
