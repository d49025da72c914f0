"""%prompt compare | test | alias | feedback | cache and the widgets, through a real InteractiveShell."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib import prompts

TESTS = """
---
- vars: {country: France}
  description: france
  assert:
    - {type: max-length, value: 400}
- vars: {country: Peru}
  assert: [{type: max-length, value: 1}]
"""


def _cap(ip, body: str = "Capital of {{ country }}?") -> None:
    ip.run_cell_magic("prompt", "cap --max-tokens 4 --no-run", body)


def test_cell_stores_tests_and_names_a_malformed_assertion(ip, workspace) -> None:
    ip.run_cell_magic("prompt", "cap --max-tokens 4 --no-run", "Capital of {{ country }}?" + TESTS)
    p = prompts.get("cap")
    assert [c["vars"] for c in p.tests] == [{"country": "France"}, {"country": "Peru"}]
    assert p.template == "Capital of {{ country }}?"
    bad = TESTS.replace("max-length, value: 1}", "max-lenght, value: 1}")
    with pytest.raises(UsageError, match="test case 2, assertion 1: unknown assertion type 'max-lenght'"):
        ip.run_cell_magic("prompt", "cap --no-run", "Another {{ country }}?" + bad)
    assert [v.version for v in prompts.history("cap")] == [1]  # nothing saved


def test_tests_file_alias_and_test_command(ip, workspace, tmp_path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("- vars: {country: Chile}\n  assert: [{type: max-length, value: 300}]\n")
    ip.run_cell_magic("prompt", f"cap --max-tokens 4 --no-run --tests {cases}", "Capital of {{ country }}?")
    out = ip.run_line_magic("prompt", "alias cap@1 prod")
    assert "cap@prod -> cap@1" in repr(out)
    report = ip.run_line_magic("prompt", "test cap@prod -o t_rep")
    assert report.ok and ip.user_ns["t_rep"] is report
    text = report._repr_mimebundle_()["text/plain"]
    assert "PASSED cap@1" in text and "max-length 300" in text
    with pytest.raises(UsageError, match="usage: %prompt alias"):
        ip.run_line_magic("prompt", "alias cap prod")
    with pytest.raises(UsageError, match="no version, alias or hash 'staging'"):
        ip.run_line_magic("prompt", "test cap@staging")


def test_failing_test_raises_in_batch_runs(ip, workspace, monkeypatch) -> None:
    ip.run_cell_magic("prompt", "cap --max-tokens 4 --no-run", "Capital of {{ country }}?" + TESTS)
    report = ip.run_line_magic("prompt", "test cap")  # interactive: a table, no exception
    assert not report.ok and [f["case"] for f in report.failures] == [2]
    monkeypatch.setenv("CELLOPS_BATCH", "0")  # 0 means off, as for every CELLOPS_BATCH reader
    assert not ip.run_line_magic("prompt", "test cap").ok
    monkeypatch.setenv("CELLOPS_BATCH", "1")
    with pytest.raises(UsageError, match=r"cap@1 failed 1 of 2 assertions on default: case 2 max-length 1"):
        ip.run_line_magic("prompt", "test cap")


def test_compare_command_file_and_variable(ip, workspace, tmp_path) -> None:
    import pandas as pd

    _cap(ip)
    _cap(ip, "Name the capital of {{ country }}.")
    (tmp_path / "c.csv").write_text("country\nFrance\nItaly\n")
    grid = ip.run_line_magic("prompt", f"compare cap@1 cap@2 --on {tmp_path / 'c.csv'} -o t_df")
    df = ip.user_ns["t_df"]
    assert isinstance(df, pd.DataFrame) and list(df["country"]) == ["France", "Italy"]
    assert df.attrs["run_id"] == grid.run_id and grid.stats.misses == 4
    assert "cap@2 · default" in grid._repr_mimebundle_()["text/html"]
    ip.user_ns["t_cases"] = pd.DataFrame({"country": ["France", None]})
    with pytest.raises(UsageError, match=r"case 2 \(row 1 of the DataFrame\) has no value for 'country'"):
        ip.run_line_magic("prompt", "compare cap@1 --on t_cases")
    ip.user_ns["t_cases"] = [{"country": "Italy"}]
    again = ip.run_line_magic("prompt", "compare cap@2 --on t_cases")
    assert again.stats.hits == 1  # the cache is shared with the first grid
    with pytest.raises(UsageError, match="no notebook variable, file or dataset named 'nothere'"):
        ip.run_line_magic("prompt", "compare cap@1 --on nothere")
    with pytest.raises(UsageError, match="the following arguments are required: --on"):
        ip.run_line_magic("prompt", "compare cap@1")


def test_feedback_and_cache_commands(ip, workspace, tmp_path) -> None:
    _cap(ip)
    ip.run_line_magic("prompt", "run cap -p country=Peru -o t_r")
    run_id = ip.user_ns["t_r"].run_id
    out = ip.run_line_magic("prompt", f"feedback {run_id} up short and right")
    assert "rated up: cap@1 · default" in repr(out)
    assert "short and right" in repr(ip.run_line_magic("prompt", "feedback list cap"))
    exported = ip.run_line_magic("prompt", f"feedback export cap {tmp_path / 'sft.jsonl'} --format sft")
    row = json.loads((tmp_path / "sft.jsonl").read_text())
    assert exported.rows == 1 and row["messages"][-1]["content"] == ip.user_ns["t_r"].text
    with pytest.raises(UsageError, match="invalid choice: 'dpo'"):
        ip.run_line_magic("prompt", f"feedback export cap {tmp_path / 'x.jsonl'} --format dpo")
    assert "default: 1 responses" in repr(ip.run_line_magic("prompt", "cache"))
    ip.run_line_magic("prompt", "run cap -p country=Peru -o t_r2")
    assert ip.user_ns["t_r2"].cached
    ip.run_line_magic("prompt", "run cap -p country=Peru --no-cache -o t_r3")
    assert not ip.user_ns["t_r3"].cached
    assert "deleted 1 cached" in repr(ip.run_line_magic("prompt", "cache clear"))


def test_widgets_rate_grid_cells_and_single_runs(workspace) -> None:
    from cellops.kernels_lib.prompts.compare import prepare, run_plan
    from cellops.widgets.compare_grid import CompareGridView
    from cellops.widgets.feedback import RunWithFeedback

    prompts.save("cap", "Capital of {{ country }}?", params={"max_tokens": 4})
    plan = prepare(["cap@1"], None, [{"country": "France"}, {"country": "word " * 5000}])
    view = CompareGridView(plan.columns, plan.cases, workspace)
    assert "running 2 cells" in view._repr_mimebundle_()["text/plain"]
    result = run_plan(plan, on_cell=view.update)
    assert view.shown == {"0:0", "1:0"}
    view.finish(result)
    assert set(view.buttons) == {"0:0"}  # the errored cell has nothing to rate
    b = view.buttons["0:0"]
    b.comment.value = "nice"
    b.up.click()
    assert b.up.button_style == "success" and "saved" in b.status.value
    b.down.click()
    fb = prompts.list_feedback("cap")
    assert len(fb) == 1 and fb[0]["rating"] == -1 and fb[0]["comment"] == "nice" and fb[0]["cell"] == "0:0"
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "context window" in bundle["text/html"]

    single = prompts.run("cap@1", {"country": "Peru"})
    wrapped = RunWithFeedback(single, workspace)
    wrapped.buttons.up.click()
    assert prompts.list_feedback("cap")[0]["run_id"] == single.run_id
    assert single.text in wrapped._repr_mimebundle_()["text/plain"]


def test_live_kernel_shows_widgets(ip, workspace, monkeypatch) -> None:
    """In a live kernel the grid and single runs are widgets (with the static HTML kept beside)."""
    from IPython.core.displaypub import CapturingDisplayPublisher

    from cellops.magics.context import MagicContext

    monkeypatch.setattr(MagicContext, "live", property(lambda self: True))
    monkeypatch.setattr(ip, "display_pub", CapturingDisplayPublisher())
    _cap(ip)
    ip.user_ns["t_cases"] = [{"country": "Peru"}]
    assert ip.run_line_magic("prompt", "compare cap@1 --on t_cases -o t_df") is None
    shown = [o for o in ip.display_pub.outputs if "application/vnd.jupyter.widget-view+json" in o["data"]]
    assert shown and "Peru" in shown[-1]["data"]["text/html"]  # the final update carries the table
    assert ip.user_ns["t_df"].attrs["cache"]["misses"] == 1
    assert ip.run_line_magic("prompt", "run cap -p country=Peru -o t_r") is None
    last = ip.display_pub.outputs[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in last and ip.user_ns["t_r"].text in last["text/plain"]


@pytest.mark.slow
def test_papermill_run_fails_on_a_failing_prompt_test(workspace, tmp_path, monkeypatch) -> None:
    import nbformat
    import papermill as pm

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext cellops"),
        nbformat.v4.new_code_cell("%%prompt cap --max-tokens 4 --no-run\nCapital of {{ country }}?" + TESTS),
        nbformat.v4.new_code_cell("%prompt test cap"),
        nbformat.v4.new_code_cell("print('not reached')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "reg.ipynb", tmp_path / "reg.out.ipynb"
    nbformat.write(nb, src)
    monkeypatch.setenv("CELLOPS_BATCH", "1")  # what the pipeline runner sets
    with pytest.raises(pm.PapermillExecutionError):
        pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    executed = {c.source: c for c in nbformat.read(out, as_version=4).cells}
    outputs = json.dumps(executed["%prompt test cap"].outputs)
    assert "FAILED cap@1" in outputs  # the table is in the notebook, above the error
    assert "cap@1 failed 1 of 2 assertions on default: case 2 max-length 1" in outputs
    assert not executed["print('not reached')"].outputs
