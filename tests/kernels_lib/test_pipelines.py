"""Pipelines without a kernel: parameters, chains, record(), schedules store, Airflow export."""

from __future__ import annotations

import ast
import json
import sys
import types
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cellops.cli import main
from cellops.kernels_lib import trust
from cellops.kernels_lib.errors import InvalidInputError, JobError, NotFoundError
from cellops.kernels_lib.pipelines import airflow, chain, notebook, schedules, values
from cellops.kernels_lib.workspace import get_workspace


def write_nb(path: Path, cells: list[str], params: bool = True) -> Path:
    """A notebook whose first cell (when ``params``) is tagged ``parameters``."""
    import nbformat as nbf

    nb = nbf.v4.new_notebook()
    nb.cells = [nbf.v4.new_code_cell(c) for c in cells]
    if params:
        nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbf.write(nb, str(path))
    return path


@pytest.fixture
def nb(tmp_path: Path) -> Path:
    return write_nb(tmp_path / "p.ipynb", ["n = 3\nrate: float = 0.5\nname = 'x'\nflag = False\ntags = ['a']",
                                          "print(n)"])


def test_parameters_are_typed_from_the_parameters_cell(nb: Path) -> None:
    declared = notebook.declared_parameters(nb)
    assert {k: v["type"] for k, v in declared.items()} == {
        "n": "int", "rate": "float", "name": "str", "flag": "bool", "tags": "list"}
    got = notebook.check_parameters(nb, {"n": "7", "rate": "2", "flag": "yes", "tags": "[1, 2]", "name": 5})
    assert got == {"n": 7, "rate": 2.0, "flag": True, "tags": [1, 2], "name": "5"}


@pytest.mark.parametrize("given, message", [
    ({"n": "abc"}, "parameter 'n' expects int"),
    ({"n": 2.5}, "parameter 'n' expects int"),
    ({"flag": "maybe"}, "parameter 'flag' expects bool"),
    ({"tags": "{a: 1}"}, "parameter 'tags' expects list"),
    ({"nope": 1}, "has no parameter 'nope'; its parameters: n, rate, name, flag, tags"),
])
def test_bad_parameters_are_one_clear_error(nb: Path, given: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        notebook.check_parameters(nb, given)


def test_params_without_a_parameters_cell_is_an_error(tmp_path: Path) -> None:
    plain = write_nb(tmp_path / "plain.ipynb", ["x = 1"], params=False)
    assert notebook.check_parameters(plain, {}) == {}
    with pytest.raises(InvalidInputError, match="no cell tagged 'parameters'"):
        notebook.check_parameters(plain, {"x": 2})
    with pytest.raises(NotFoundError, match="notebook 'missing.ipynb' not found"):
        notebook.notebook_path("missing.ipynb")


def test_cli_params_merge_files_and_pairs(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("n: 4\nname: from-file\n")
    assert notebook.parse_cli_params([["name", "cli"]], [str(f)]) == {"n": 4, "name": "cli"}
    f.write_text("- not a mapping")
    with pytest.raises(InvalidInputError, match="must hold a mapping"):
        notebook.parse_cli_params(None, [str(f)])


def test_record_appends_to_the_values_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    out = tmp_path / "v.jsonl"
    monkeypatch.setenv(values.ENV_VALUES, str(out))
    shown = values.record(score=np.float32(0.5), model="m@2")
    values.record(score=0.75, n=np.int64(3))
    assert shown == {"score": 0.5, "model": "m@2"} and "score" in shown._repr_mimebundle_()["text/html"]
    got = values.read_values(out)
    assert got == {"score": 0.75, "model": "m@2", "n": 3}
    assert values.metrics_of(got) == {"score": 0.75, "n": 3.0}
    with pytest.raises(InvalidInputError, match="cannot record x="):
        values.record(x=object())


def _chain(tmp_path: Path, body: str) -> Path:
    write_nb(tmp_path / "a.ipynb", ["base = 1", "pass"])
    write_nb(tmp_path / "b.ipynb", ["model = 'x'\nfactor = 1.0", "pass"])
    p = tmp_path / "pipe.yaml"
    p.write_text(body)
    return p


def test_chain_orders_steps_and_infers_needs_from_references(tmp_path: Path) -> None:
    p = _chain(tmp_path, "params: {base: 2}\nsteps:\n  b:\n    notebook: b.ipynb\n"
               "    params: {model: '${a.ref}', factor: '${a.score}'}\n"
               "  a:\n    notebook: a.ipynb\n    params: {base: '${params.base}'}\n")
    c = chain.load_chain(p, {"base": "5"})
    assert list(c.steps) == ["a", "b"] and c.steps["b"].needs == ["a"] and c.params == {"base": 5}
    vals = {"params": c.params, "a": {"ref": "m@5", "score": 0.5}}
    assert chain.resolve("${a.score}", vals, "b") == 0.5  # whole reference keeps its type
    assert chain.resolve("model ${a.ref}!", vals, "b") == "model m@5!"
    with pytest.raises(InvalidInputError, match=r"needs \$\{a.missing\} but a recorded ref, score"):
        chain.resolve("${a.missing}", vals, "b")


@pytest.mark.parametrize("body, message", [
    ("steps:\n  a: {notebook: a.ipynb, needs: [b]}\n  b: {notebook: b.ipynb, needs: [a]}\n", "cycle"),
    ("steps:\n  a: {notebook: a.ipynb, params: {base: '${zz.v}'}}\n", "unknown step 'zz'"),
    ("steps:\n  a: {notebook: nope.ipynb}\n", "not found"),
    ("steps:\n  a: {notebook: a.ipynb, params: {base: abc}}\n", "expects int"),
    ("steps:\n  a: {notebook: a.ipynb, retry: 2}\n", "unknown key"),
    ("name: x\n", "needs a 'steps:'"),
])
def test_bad_chains_fail_before_anything_runs(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises((InvalidInputError, NotFoundError), match=message):
        chain.load_chain(_chain(tmp_path, body))


@pytest.mark.parametrize("cron", ["61 * * * *", "* * * *", "every day", "* * * * * *"])
def test_bad_cron_is_rejected(nb: Path, cron: str) -> None:
    with pytest.raises(InvalidInputError, match="bad cron expression"):
        schedules.add(nb, cron=cron)
    assert list(schedules.list_schedules()) == []


def test_cron_that_never_fires_is_one_line_and_saves_nothing(nb: Path, capsys: pytest.CaptureFixture) -> None:
    from cellops.cli import main

    assert main(["schedule", "add", str(nb), "--cron", "0 0 31 2 *"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "matches no date" in err and "0 0 31 2 *" in err
    assert list(schedules.list_schedules()) == []


def test_schedules_persist_in_the_workspace_and_can_be_paused(nb: Path, workspace) -> None:
    s = schedules.add(nb, cron="0 2 * * *", params={"n": "9"}, name="nightly", retries=2,
                      on_failure="echo failed")
    assert s.params == {"n": 9} and s.next_run.hour == 2 and not s.paused
    with pytest.raises(InvalidInputError, match="a schedule named 'nightly' exists"):
        schedules.add(nb, cron="0 3 * * *", name="nightly")
    with pytest.raises(InvalidInputError, match="expects int"):
        schedules.add(nb, cron="0 3 * * *", params={"n": "x"}, name="other")
    # a fresh process view: schedules are plain rows of the workspace database
    with workspace.db() as conn:
        (row,) = conn.execute("SELECT name, spec FROM schedules").fetchall()
    assert row["name"] == "nightly" and json.loads(row["spec"])["retries"] == 2
    assert schedules.pause("nightly").paused
    listed = schedules.list_schedules()
    assert [x.name for x in listed] == ["nightly"] and listed[0].paused and "paused" in str(listed)
    assert not schedules.resume("nightly").paused
    schedules.remove("nightly")
    assert list(schedules.list_schedules()) == []
    with pytest.raises(NotFoundError, match="no schedule 'nightly'"):
        schedules.pause("nightly")


def _fake_airflow(monkeypatch: pytest.MonkeyPatch) -> list:
    """Just enough of airflow's API to import a DAG file and see what it builds (real Airflow:
    test_pipelines_airflow.py, when .venv-airflow exists)."""
    dags: list = []

    class DAG:
        def __init__(self, **kw):
            self.kw, self.tasks = kw, {}

        def __enter__(self):
            DAG.current = self
            dags.append(self)
            return self

        def __exit__(self, *a):
            DAG.current = None

    class BashOperator:
        def __init__(self, **kw):
            self.kw, self.upstream = kw, set()
            DAG.current.tasks[kw["task_id"]] = self

        def __rshift__(self, other):
            other.upstream.add(self.kw["task_id"])
            return other

    names = ["airflow", "airflow.providers", "airflow.providers.standard",
             "airflow.providers.standard.operators", "airflow.providers.standard.operators.bash"]
    mods = {n: types.ModuleType(n) for n in names}
    mods["airflow"].DAG = DAG
    mods["airflow.providers.standard.operators.bash"].BashOperator = BashOperator
    for k, v in mods.items():
        monkeypatch.setitem(sys.modules, k, v)
    return dags


def test_airflow_export_builds_cellops_run_tasks(tmp_path: Path, nb: Path, monkeypatch, capsys) -> None:
    pipe = _chain(tmp_path, "params: {base: 2}\nsteps:\n  a: {notebook: a.ipynb, params: {base: '${params.base}'}}\n"
                  "  b: {notebook: b.ipynb, params: {model: '${a.ref}', factor: '${a.score}', tag: 'v${a.ref}-${params.base}'}}\n")
    schedules.add(nb, cron="30 1 * * *", params={"n": 4}, name="nb", retries=1, timeout=600)
    schedules.add(pipe, every=3600, name="chain", on_failure="echo x")
    path = airflow.export(tmp_path / "dags")
    ast.parse(path.read_text())
    dags = _fake_airflow(monkeypatch)
    ns: dict = {"__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    by_id = {d.kw["dag_id"]: d for d in dags}
    assert set(by_id) == {"cellops_nb", "cellops_chain"} and "cellops_nb" in ns
    nbdag = by_id["cellops_nb"]
    assert nbdag.kw["schedule"] == "30 1 * * *" and nbdag.kw["max_active_runs"] == 1
    assert nbdag.kw["default_args"]["retries"] == 1
    assert nbdag.kw["default_args"]["execution_timeout"] == timedelta(seconds=600)
    (task,) = nbdag.tasks.values()
    env = task.kw["env"]
    assert env["CELLOPS_NOTEBOOK"] == str(nb) and Path(env["CELLOPS_BIN"]).name == "cellops"
    assert env["CELLOPS_HOME"] == str(get_workspace().root)
    assert env["CELLOPS_OUT"].endswith("/cellops_nb/{{ run_id }}/p")
    assert env["CELLOPS_PARAMS"] == "{{ cellops_params('cellops_nb', 'p', run_id) }}"
    assert json.loads(ns["cellops_params"]("cellops_nb", "p", "r1")) == {"n": 4}
    ch = by_id["cellops_chain"]
    assert ch.kw["schedule"] == timedelta(hours=1) and "on_failure_callback" in ch.kw["default_args"]
    assert ch.tasks["b"].upstream == {"a"} and json.loads(ns["cellops_params"]("cellops_chain", "a", "r1")) == {"base": 2}
    # b's references resolve, when its task renders, from the values file step a's run wrote
    vals_file = Path(ch.tasks["a"].kw["env"]["CELLOPS_OUT"].replace("{{ run_id }}", "r1") + ".values.json")
    with pytest.raises(KeyError, match="step a recorded no value 'ref'"):
        ns["cellops_params"]("cellops_chain", "b", "r1")
    vals_file.parent.mkdir(parents=True)
    vals_file.write_text(json.dumps({"ref": "m@7", "score": 0.5}))
    assert json.loads(ns["cellops_params"]("cellops_chain", "b", "r1")) == \
        {"model": "m@7", "factor": 0.5, "tag": "vm@7-2"}
    assert datetime.fromisoformat(nbdag.kw["start_date"].isoformat()) <= datetime.now()
    # each task pins its notebook's code as exported; an edit after that fails the task
    pinned = env["CELLOPS_CODE"]
    assert pinned == trust.code_digest(nb) and '--expect-code "$CELLOPS_CODE"' in ns["COMMAND"]
    book = json.loads(nb.read_text())
    book["cells"][-1]["source"] = "import os  # changed after the export"
    nb.write_text(json.dumps(book))
    assert main(["run", str(nb), "--expect-code", pinned]) == 2
    assert "changed since it was exported" in capsys.readouterr().err
    assert get_workspace().list_runs("pipeline") == []  # refused before anything ran
    with pytest.raises(JobError, match="not exported: .*changed since you trusted schedule nb"):
        airflow.export(tmp_path / "dags")
