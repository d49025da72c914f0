"""The exported DAG file under real Apache Airflow (its own venv, .venv-airflow, made by
`make test-setup` from requirements-airflow.txt): a DagBag import without errors, then
`airflow dags test` running a two-step chain whose tasks call this environment's `cellops run`
on a real kernel, the second step's parameters coming from what the first recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_pipelines import write_nb

from cellops.kernels_lib.pipelines import airflow, schedules

DAGBAG = """
import json, sys
try:
    from airflow.models.dagbag import DagBag
except ImportError:  # moved in later Airflow 3 releases
    from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
print("DAGBAG " + json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
      "dags": {d: sorted(t.task_id for t in bag.dags[d].tasks) for d in bag.dags}}))
"""


def _airflow_bin() -> Path:
    venv = Path(sys.prefix).with_name(Path(sys.prefix).name + "-airflow")
    return Path(os.environ.get("CELLOPS_AIRFLOW") or venv / "bin" / "airflow")


@pytest.fixture
def airflow_env(tmp_path: Path) -> dict[str, str]:
    if not _airflow_bin().exists():
        pytest.skip(f"Apache Airflow is not installed at {_airflow_bin()} (`make test-setup` creates .venv-airflow)")
    home = tmp_path / "airflow-home"
    return os.environ | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
                         "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                         "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}


@pytest.mark.slow  # ~30 s of CPU, minutes of wall time on a loaded machine (three Airflow processes, two kernels)
def test_real_airflow_imports_and_runs_the_exported_chain(tmp_path: Path, workspace, airflow_env) -> None:
    write_nb(tmp_path / "a.ipynb", ["base = 1", "import cellops\ncellops.pipelines.record(ref=f'm@{base}', n=base * 2)"])
    write_nb(tmp_path / "b.ipynb", ["model = 'x'\nn = 0", "import cellops\ncellops.pipelines.record(seen=f'{model}:{n + 1}')"])
    (tmp_path / "pipe.yaml").write_text("params: {base: 3}\nsteps:\n  a: {notebook: a.ipynb, params: {base: '${params.base}'}}\n"
                                        "  b: {notebook: b.ipynb, params: {model: '${a.ref}', n: '${a.n}'}}\n")
    schedules.add(tmp_path / "pipe.yaml", cron="0 2 * * *", name="nightly")
    path = airflow.export(tmp_path / "dags")
    exe = str(_airflow_bin())
    # the database migration runs while the DagBag imports: each takes tens of seconds when loaded
    migrate = subprocess.Popen([exe, "db", "migrate"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env=airflow_env)
    try:
        bag = subprocess.run([_airflow_bin().with_name("python"), "-c", DAGBAG, str(path.parent)],
                             capture_output=True, text=True, env=airflow_env, timeout=300)
    finally:
        _, err = migrate.communicate(timeout=300)
    line = next((ln for ln in bag.stdout.splitlines() if ln.startswith("DAGBAG ")), None)
    assert line, bag.stderr[-3000:]
    assert json.loads(line.removeprefix("DAGBAG ")) == {"errors": {}, "dags": {"cellops_nightly": ["a", "b"]}}
    assert migrate.returncode == 0, err[-3000:]
    test = subprocess.run([exe, "dags", "test", "cellops_nightly"], capture_output=True, text=True,
                          env=airflow_env, timeout=600)
    assert test.returncode == 0, (test.stdout + test.stderr)[-4000:]
    runs = {r["name"]: r for r in workspace.list_runs("pipeline")}
    assert {k: r["status"] for k, r in runs.items()} == {"a": "ok", "b": "ok"}
    assert runs["b"]["record"]["params"] == {"model": "m@3", "n": 6}  # typed, from a's record
    assert runs["b"]["record"]["values"] == {"seen": "m@3:7"}
    assert runs["a"]["record"]["schedule"] == "nightly"
    (out,) = (tmp_path / "dags" / "cellops-output" / "cellops_nightly").iterdir()  # one DAG run
    assert json.loads((out / "b.values.json").read_text()) == {"seen": "m@3:7"}
    assert (out / "b" / "b.ipynb").exists()
