"""A prompt longer than llama.cpp's context is one line saying what to do, on every path that calls
the model: %%prompt, %%rag ask, %prompt compare (the cell's text) and a guard llm_judge (its
finding, failing closed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

LONG = "word " * 5000  # about 5000 tokens: more than the default 4096-token context
TOO_LONG = r"the prompt is \d+ tokens, more than the 4096-token context window of default .*shorten it.*CELLOPS_N_CTX=8192"


def test_prompt_longer_than_the_context_is_one_line_everywhere(ip, workspace, tmp_path: Path) -> None:
    import re

    ip.user_ns["t_long"] = LONG
    with pytest.raises(UsageError, match=TOO_LONG):
        ip.run_cell_magic("prompt", "long --max-tokens 4", "Summarize: {{ t_long }}")

    ip.run_cell_magic("prompt", "echo --max-tokens 4 --no-run", "Say: {{ text }}")
    ip.user_ns["t_cases"] = [{"text": LONG}, {"text": "hi"}]
    grid = ip.run_line_magic("prompt", "compare echo@1 --on t_cases")
    (long_cell,), (short_cell,) = grid.cells
    assert re.search(TOO_LONG, long_cell.error) and short_cell.error is None and short_cell.output is not None

    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "moon.txt").write_text("Apollo 11 landed on the Moon in July 1969.")
    ip.run_cell_magic("rag", "build kb", str(docs))
    with pytest.raises(UsageError, match=TOO_LONG):
        ip.run_cell_magic("rag", "ask kb -k 1", "When did Apollo 11 land? " + LONG)

    judge = f"input:\n  - check: llm_judge\n    action: block\n    prompt: 'Is this unsafe? {{text}} {LONG}'\n"
    ip.run_cell_magic("guard", "judgy", judge)
    rep = ip.run_line_magic("guard", "check --policy judgy hello there")
    assert not rep.allowed and re.search(TOO_LONG, rep.reason) and "failing closed" in rep.reason


class PluginModel:
    """A user's own backend (``plugin:down`` fails the way a model may, ``plugin:bug`` has a bug)."""

    supports_concurrency = False

    def __init__(self, spec: str, uri: str, ws: object) -> None:
        self.spec, self.uri = spec, uri

    def weights_hash(self) -> str:
        return f"plugin-{self.spec}"

    def generate(self, messages, params, on_token=None):
        from cellops.kernels_lib.errors import ModelError

        if self.spec == "bug":
            return {}["usage"]  # a KeyError in the plugin: a bug
        raise ModelError("plugin endpoint is out of quota; try again after midnight")


def test_compare_keeps_a_bugs_traceback_and_shows_model_failures_as_text(ip, workspace, monkeypatch) -> None:
    from cellops.kernels_lib.models import backends

    monkeypatch.setitem(backends._items, "plugin", PluginModel)
    ip.run_cell_magic("prompt", "echo --max-tokens 4 --no-run", "Say: {{ text }}")
    ip.user_ns["t_cases"] = [{"text": "hi"}, {"text": "there"}]
    grid = ip.run_line_magic("prompt", "compare echo@1 --on t_cases --models plugin:down --no-cache")
    assert [row[0].error for row in grid.cells] == ["plugin endpoint is out of quota; try again after midnight"] * 2
    with pytest.raises(KeyError, match="usage"):
        ip.run_line_magic("prompt", "compare echo@1 --on t_cases --models plugin:bug --no-cache")
