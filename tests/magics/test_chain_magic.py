"""%%chain and %chain through a real InteractiveShell: notebook functions as python steps."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib import chains

BODY = """
inputs: [t_text]
steps:
  words: {python: t_split, args: {s: "{{ inputs.t_text }}"}}
  shout:
    map: "{{ steps.words.output }}"
    step: {python: t_up, args: {t: "{{ item }}"}}
output: "{{ steps.shout.output | join(' ') }}"
tests:
  - vars: {t_text: "hi there"}
    assert:
      - {type: equals, value: "HI THERE"}
      - {type: contains, value: "there", step: words}
"""


def _define(ip) -> None:
    ip.run_cell("def t_split(s):\n    return s.split()\n\ndef t_up(t):\n    return t.upper()\n")


def test_cell_saves_and_runs_with_notebook_functions(ip, workspace) -> None:
    _define(ip)
    view = ip.run_cell_magic("chain", "shout", BODY)
    assert "saved new version shout@1" in view._repr_mimebundle_()["text/plain"]
    assert "-p t_text=..." in view.text
    r = ip.run_cell_magic("chain", "shout -p t_text='a b' -o t_r", BODY)
    assert r is ip.user_ns["t_r"] and r.output == "A B" and r.chain == "shout@1"
    assert workspace.get_run(r.run_id)["record"]["source"] == "magic"

    ip.user_ns["t_text"] = "from the notebook"  # a notebook variable named like an input
    r2 = ip.run_line_magic("chain", "run shout@1")
    assert r2.output == "FROM THE NOTEBOOK"
    assert ip.run_line_magic("chain", "run shout -p t_text=x").output == "X"  # -p wins

    report = ip.run_line_magic("chain", "test shout")
    assert report.ok and report.passed == 2
    listing = ip.run_line_magic("chain", "list")._repr_mimebundle_()["text/plain"]
    assert "shout@1" in listing
    shown = ip.run_line_magic("chain", "show shout@1").text
    assert "python: t_split" in shown and "# " not in shown.splitlines()[0]
    assert "shout@1" in ip.run_line_magic("chain", "history shout")._repr_mimebundle_()["text/plain"]
    ip.run_line_magic("chain", "alias shout@1 prod")
    assert chains.get("shout@prod").version == 1


def test_bad_input_is_one_usage_line_and_saves_nothing(ip, workspace) -> None:
    with pytest.raises(UsageError, match=r"chain bad, step 'a': unknown step type 'pyton'; valid types: "):
        ip.run_cell_magic("chain", "bad", "steps:\n  a: {pyton: t_split}\n")
    with pytest.raises(UsageError, match=r"chain bad, step 'a': refers to steps.b, which comes later"):
        ip.run_cell_magic("chain", "bad", "steps:\n  a: {python: t_split, args: {s: '{{ steps.b.output }}'}}\n"
                                          "  b: {python: t_up}\n")
    with pytest.raises(UsageError, match=r"^chain dup, step 'a': defined twice \(lines 2 and 3\); keep one$"):
        ip.run_cell_magic("chain", "dup", 'steps:\n  a: {generate: "first"}\n  a: {generate: "second"}\n')
    assert workspace.names("chain") == []
    with pytest.raises(UsageError, match=r"^no saved chain named 'nosuch'; %chain list shows"):
        ip.run_line_magic("chain", "history nosuch")
    ip.run_cell("def t_fail(s):\n    raise KeyError(s)\n")
    ip.run_cell_magic("chain", "boom", "steps:\n  f: {python: t_fail, args: {s: oops}}\n")
    with pytest.raises(UsageError, match=r"chain boom@1 stopped at step 'f' \(python t_fail\): KeyError: 'oops'"):
        ip.run_line_magic("chain", "run boom")
    with pytest.raises(UsageError, match=r"no function named 't_missing' in the notebook"):
        ip.run_cell_magic("chain", "miss --run", "steps:\n  f: {python: t_missing}\n")
    with pytest.raises(UsageError, match="usage: %chain run"):
        ip.run_line_magic("chain", "frobnicate")


def test_compare_and_batch_test_commands(ip, workspace, monkeypatch) -> None:
    _define(ip)
    ip.run_cell_magic("chain", "shout", BODY)
    ip.run_cell_magic("chain", "shout", BODY.replace("join(' ')", "join('_')"))
    ip.user_ns["t_cases"] = [{"vars": {"t_text": "a b"}, "assert": [{"type": "equals", "value": "A B"}]}]
    grid = ip.run_line_magic("chain", "compare shout@1 shout@2 --on t_cases -o t_df")
    assert [[c.output for c in row] for row in grid.cells] == [["A B", "A_B"]]
    assert list(ip.user_ns["t_df"]["shout@2 · default passed"]) == [False]
    assert "shout@2" in grid._repr_mimebundle_()["text/plain"]
    monkeypatch.setenv("CELLOPS_BATCH", "1")  # a papermill run: a failing test fails the cell
    with pytest.raises(UsageError, match=r"chain shout@2 failed 1 of 1 assertions"):
        ip.run_line_magic("chain", "test shout@2 --tests t_cases")


def test_live_waterfall_fills_in_while_chain_compare_and_test_run(ip, workspace, live_views) -> None:
    """Each grid cell's chain run shows in the live view as it runs; at the end the output keeps
    the finished grid waterfall as static HTML and the widget closes."""
    _define(ip)
    ip.run_cell_magic("chain", "lshout", BODY)
    ip.user_ns["t_cases"] = [{"vars": {"t_text": "a b"}, "assert": [{"type": "equals", "value": "A B"}]},
                             {"vars": {"t_text": "c"}, "assert": [{"type": "equals", "value": "C"}]}]
    ip.run_line_magic("chain", "compare lshout@1 --on t_cases")
    ip.run_line_magic("chain", "test lshout@1")
    assert len(live_views.views) == 2 and all(v.widget.comm is None for v in live_views.views)
    assert live_views.views[0].trace.root.name == "chain grid"
    runs = [sum(n.startswith("chain lshout@1") for n in names) for names in live_views.running()]
    assert 1 in runs and 2 in runs and runs.index(1) < runs.index(2), live_views.states  # filling in
    settled = [o["data"].get("text/html", "") for o in ip.display_pub.outputs if o.get("update")]
    assert sum("wf-name" in h and "chain grid" in h for h in settled) == 2
