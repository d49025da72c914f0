"""The default model is resolved in one place (kernels_lib.models.tasks.model_for): every magic
passes only its own --model, so ``%config Cellops.model`` / ``answer_model`` reach %%prompt,
%prompt compare, %chain and %%rag ask alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib.models.tasks import model_for

CHAIN = """
inputs: [q]
steps:
  say: {generate: "{{ inputs.q }}", params: {max_tokens: 2}}
output: "{{ steps.say.output }}"
"""


@pytest.fixture
def configured(ip):
    ip.run_line_magic("config", "Cellops.model = 'nosuch-general'")
    yield ip
    ip.run_line_magic("config", "Cellops.model = 'default'")
    ip.run_line_magic("config", "Cellops.answer_model = ''")


def test_cellops_model_reaches_every_magic(configured, workspace) -> None:
    ip = configured
    assert model_for("prompt") == "nosuch-general" and model_for("answer") == "nosuch-general"
    with pytest.raises(UsageError, match="nosuch-general"):
        ip.run_cell_magic("prompt", "cap --max-tokens 2", "Capital of France?")
    ip.run_cell_magic("prompt", "cap --max-tokens 2 --no-run", "Capital of {{ country }}?")
    ip.user_ns["t_cases"] = [{"country": "Peru"}]
    with pytest.raises(UsageError, match="nosuch-general"):
        ip.run_line_magic("prompt", "compare cap@1 --on t_cases")
    with pytest.raises(UsageError, match="nosuch-general"):
        ip.run_cell_magic("chain", "say -p q=hi", CHAIN)
    assert ip.run_line_magic("prompt", "run cap@1 --model default -p country=Peru").text  # --model wins


def test_answer_model_reaches_rag_ask(configured, tmp_path: Path) -> None:
    ip = configured
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "moon.txt").write_text("Apollo 11 landed on the Moon in July 1969.")
    ip.run_cell_magic("rag", "build kb", str(tmp_path / "kb"))
    ip.run_line_magic("config", "Cellops.answer_model = 'nosuch-answer'")
    assert model_for("answer") == "nosuch-answer" and model_for("prompt") == "nosuch-general"
    with pytest.raises(UsageError, match="nosuch-answer"):
        ip.run_cell_magic("rag", "ask kb -k 1", "When did Apollo 11 land?")
