"""%models and the per-task models (%config Cellops.answer_model / judge_model) in a real shell.

The stronger model is stood in for by a second URI of the embedded SmolLM2 file
(``llamacpp:<path>``): the routing is what is tested, and it stays fast on a shared machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib import guard
from cellops.kernels_lib.models import tasks
from cellops.kernels_lib.models.weights import default_gguf


@pytest.fixture
def stronger(ip, monkeypatch):
    for var in tasks.ENV.values():
        monkeypatch.delenv(var, raising=False)
    uri = f"llamacpp:{default_gguf()}"
    yield uri
    ip.run_line_magic("config", "Cellops.answer_model = ''")
    ip.run_line_magic("config", "Cellops.judge_model = ''")


def test_models_list_and_a_bad_pull(ip) -> None:
    listing = ip.run_line_magic("models", "list")
    text = listing._repr_mimebundle_()["text/plain"]
    assert "qwen-1.5b" in text and "qwen2.5-coder-0.5b" in text
    assert "<table>" in listing._repr_mimebundle_()["text/html"]
    with pytest.raises(UsageError, match="no model 'qwen-7b' in the catalog"):
        ip.run_line_magic("models", "pull qwen-7b")
    with pytest.raises(UsageError, match="unknown subcommand"):
        ip.run_line_magic("models", "remove qwen-0.5b")
    with pytest.raises(UsageError, match="no model 'qwen-7b' in the catalog"):
        ip.run_line_magic("models", "measure qwen-7b")


def test_answer_model_serves_rag_ask_while_prompt_keeps_the_default(ip, stronger, tmp_path: Path) -> None:
    (tmp_path / "pools.md").write_text("# Tide pools\n\nSea stars, anemones and crabs live in tide pools.\n")
    ip.run_cell_magic("rag", "build t_kb", f"{tmp_path / 'pools.md'}\n")
    ip.run_line_magic("config", f"Cellops.answer_model = '{stronger}'")
    ip.run_cell_magic("rag", "ask t_kb -k 1 -o t_ans", "What lives in tide pools?")
    assert ip.user_ns["t_ans"].model == stronger
    ip.run_cell_magic("prompt", "t_hello --max-tokens 4 -o t_p", "Say hello.")
    assert ip.user_ns["t_p"].model == "default"


def test_judge_model_serves_llm_judge_and_rubric(ip, stronger, workspace) -> None:
    ip.run_line_magic("config", f"Cellops.judge_model = '{stronger}'")
    assert tasks.model_for("judge") == stronger and tasks.model_for("prompt") == "default"
    pol = guard.load("input:\n  - check: llm_judge\n    max_tokens: 2\n", workspace)
    [(_, check)] = pol.rails["input"]
    assert check.model == stronger and check.llm.uri == stronger
    f = pol.check_input("How do I bake bread?").findings[0]
    assert f.detail["model"] == stronger
    ip.run_line_magic("config", "Cellops.judge_model = ''")
    [(_, check)] = guard.load("input:\n  - check: llm_judge\n    max_tokens: 2\n", workspace).rails["input"]
    assert check.model == "default"  # the policy cache follows the configured judge
