"""Every notebook in notebooks/ runs under papermill on the embedded defaults and succeeds."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from cellops.kernels_lib import pipelines

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert any(p.name == "prompt_regression.ipynb" for p in NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_under_papermill(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    run = pipelines.run(path, out_dir=tmp_path, timeout=1800, cwd=tmp_path)  # never write into the checkout
    assert run.status == "ok", run.error
    executed = nbformat.read(run.record["output_notebook"], as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == [] and Path(run.record["output_html"]).is_file()


def test_prompt_regression_fails_the_run_when_a_test_fails(tmp_path: Path) -> None:
    path = next(p for p in NOTEBOOKS if p.name == "prompt_regression.ipynb")
    cases = tmp_path / "cases.yaml"
    cases.write_text("- vars: {question: 'What is the capital of France?'}\n"
                     "  assert: [{type: icontains, value: Paris}]\n"
                     "- vars: {question: 'What is the capital of France?'}\n"
                     "  assert: [{type: contains, value: Berlin}]\n")
    run = pipelines.run(path, {"cases_file": str(cases), "prompt_name": "regress"})
    assert run.status == "failed" and run.error["ename"] == "PromptTestFailed"
    assert run.values["passed"] == 1 and run.values["assertions"] == 2 and run.values["pass_rate"] == 0.5
    assert run.record["touched"]["prompt"] == ["regress@1"]


def test_prompt_regression_takes_a_dataset_of_cases(tmp_path: Path, workspace) -> None:
    """A pipeline parameter can name a dataset version; the run's manifest lists it."""
    from cellops.kernels_lib import datasets

    datasets.save("regcases", [{"vars": {"question": "What is the capital of France?"},
                                "assert": [{"type": "max-length", "value": 400}]}], workspace=workspace)
    path = next(p for p in NOTEBOOKS if p.name == "prompt_regression.ipynb")
    run = pipelines.run(path, {"cases_file": "regcases@1", "prompt_name": "regress-ds"}, cwd=tmp_path)
    assert run.status == "ok", run.error
    assert run.values["assertions"] == 1 and run.record["touched"]["dataset"] == ["regcases@1"]
