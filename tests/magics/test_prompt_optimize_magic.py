"""%prompt optimize through a real InteractiveShell: bad input is one UsageError line."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

CASES = [{"vars": {"country": c}, "assert": [{"type": "icontains", "value": a}]}
         for c, a in (("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"))]


def test_magic_refuses_a_zero_budget_in_one_line(ip, tmp_path, workspace) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    ip.run_cell_magic("prompt", "cap --no-run", "What is the capital of {{country}}?")
    with pytest.raises(UsageError, match="budget must allow at least 1 model call, got 0"):
        ip.run_line_magic("prompt", f"optimize cap --on {cases} --budget 0")
    with pytest.raises(UsageError, match="unknown search dimension"):
        ip.run_line_magic("prompt", f"optimize cap --on {cases} --search params,colour")
