"""Real papermill runs: records, failures, kernel death, timeouts, retries, chains, replay, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_pipelines import write_nb

from cellops.kernels_lib import pipelines
from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.tracking import traces


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from cellops.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_run_records_params_values_env_and_outputs(tmp_path: Path, workspace) -> None:
    nb = write_nb(tmp_path / "ok.ipynb", [
        "n = 3\nlabel = 'a'",
        "import os, sys, cellops\nprint(os.environ['CELLOPS_BATCH'], sys.executable)",
        "cellops.pipelines.record(score=n * 0.5, label=label)",
    ])
    r = pipelines.run(nb, {"n": "4"}, out_dir=tmp_path / "out")
    rec = r.record
    assert r.status == "ok" and r.ok and rec["error"] is None
    assert rec["params"] == {"n": 4, "label": "a"} and rec["given_params"] == {"n": 4}
    assert rec["values"] == {"score": 2.0, "label": "a"} and rec["metrics"] == {"score": 2.0}
    assert len(rec["notebook_hash"]) == 64 and rec["env"]["packages"]["papermill"]
    assert rec["env"]["hardware"]["cpus"] >= 1 and rec["kernel"]["executable"] == sys.executable
    # the kernel is this interpreter, in batch mode
    out = nbformat.read(rec["output_notebook"], as_version=4)
    printed = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    assert f"1 {sys.executable}" in printed
    assert Path(rec["output_notebook"]).parent == tmp_path / "out"
    assert "<html" in Path(rec["output_html"]).read_text()[:500].lower()
    assert len(rec["cell_hashes"]) == 4  # parameters, injected parameters, 2 cells
    stored = workspace.get_run(r.id)
    assert stored["status"] == "ok" and stored["record"]["values"] == rec["values"]
    assert [x["id"] for x in pipelines.runs()] == [r.id]


def test_failures_exit_nonzero_and_keep_the_partial_notebook(tmp_path: Path, workspace) -> None:
    write_nb(tmp_path / "fail.ipynb", ["x = 1", "print('before')", "raise ValueError('boom')", "print('never')"])
    res = cli("run", "fail.ipynb", cwd=tmp_path)
    assert res.returncode == 1 and "code cell 3 raised ValueError: boom" in res.stderr
    (run,) = workspace.list_runs("pipeline")
    assert run["status"] == "failed" and run["record"]["error"]["cell"] == 2
    # a kernel that dies mid-run: recorded failed, partial notebook kept and marked
    write_nb(tmp_path / "die.ipynb", ["x = 1", "print('before')", "import os; os.kill(os.getpid(), 9)", "print('never')"])
    r = pipelines.run(tmp_path / "die.ipynb")
    assert r.status == "failed" and r.error["kind"] == "kernel_died" and r.error["cell"] == 2
    partial = nbformat.read(r.record["output_notebook"], as_version=4)
    code = [c for c in partial.cells if c.cell_type == "code"]
    assert code[1].outputs[0]["text"] == "before\n"
    assert code[2].outputs[-1]["ename"] == "DeadKernelError" and not code[3].outputs
    # bad input: one line, exit 2, nothing recorded
    res = cli("run", "fail.ipynb", "-p", "x", "abc", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip() == \
        "cellops: parameter 'x' expects int (default 1), got 'abc'"
    assert cli("run", "nope.ipynb", cwd=tmp_path).returncode == 2
    assert len(workspace.list_runs("pipeline")) == 2


def test_timeout_and_retries(tmp_path: Path) -> None:
    slow = write_nb(tmp_path / "slow.ipynb", ["secs = 60", "import time\ntime.sleep(secs)", "print('never')"])
    r = pipelines.run(slow, timeout=6)
    assert r.status == "failed" and r.error["kind"] == "timeout" and r.error["cell"] == 1
    assert r.record["duration_s"] < 30
    flaky = write_nb(tmp_path / "flaky.ipynb", [
        "marker = ''", "from pathlib import Path\np = Path(marker)\n"
        "if not p.exists():\n    p.write_text('1')\n    raise RuntimeError('first attempt fails')"])
    r = pipelines.run(flaky, {"marker": str(tmp_path / "m")}, retries=1)
    assert r.status == "ok" and [a["status"] for a in r.record["attempts"]] == ["failed", "ok"]
    with pytest.raises(InvalidInputError):
        pipelines.run(flaky, retries=-1)


def test_chain_feeds_values_and_stops_dependants(tmp_path: Path, workspace) -> None:
    write_nb(tmp_path / "a.ipynb", ["base = 1", "import cellops\ncellops.pipelines.record(ref=f'm@{base}', score=base / 4)"])
    write_nb(tmp_path / "b.ipynb", ["model = 'x'\nfactor = 1.0",
                                    "import cellops\ncellops.pipelines.record(used=model, total=factor * 10)"])
    write_nb(tmp_path / "c.ipynb", ["x = 0", "raise RuntimeError('step broke')"])
    (tmp_path / "pipe.yaml").write_text(
        "name: demo\nparams: {base: 2}\nsteps:\n"
        "  a: {notebook: a.ipynb, params: {base: '${params.base}'}}\n"
        "  b: {notebook: b.ipynb, params: {model: '${a.ref}', factor: '${a.score}'}}\n"
        "  c: {notebook: c.ipynb}\n"
        "  d: {notebook: b.ipynb, needs: [c]}\n")
    res = cli("run", "pipe.yaml", "-p", "base", "8", cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    chain_run = next(r for r in workspace.list_runs("pipeline") if r["name"] == "demo")
    steps = chain_run["record"]["steps"]
    assert steps["b"]["params"] == {"model": "m@8", "factor": 2.0}
    assert steps["b"]["values"] == {"used": "m@8", "total": 20.0}
    assert steps["c"]["status"] == "failed" and steps["d"]["status"] == "skipped"
    assert "needs c" in steps["d"]["reason"] and chain_run["record"]["failed_step"] == "c"
    assert chain_run["record"]["metrics"] == {"a.score": 2.0, "b.total": 20.0}
    assert "step d: skipped" in res.stdout
    # one trace: a span per step, each notebook's own trace (attempt -> a span per cell) under it
    st = traces.get(chain_run["record"]["trace_id"], workspace)
    assert st.root.name == "pipeline demo" and st.root.status == "error" and st.summary.run_id == chain_run["id"]
    by = {s.name: s for s in st.children(st.root)}
    assert list(by) == ["a", "b", "c", "d"] and by["c"].status == "error" and by["d"].attrs["cellops.skipped"]
    (nb_root,) = st.children(by["b"])
    assert nb_root.name == "pipeline b.ipynb" and nb_root.attrs["cellops.run_id"] == steps["b"]["run_id"]
    (attempt,) = st.children(nb_root)
    assert [s.name for s in st.children(attempt)] == ["cell 1", "cell 2", "cell 3"]  # papermill injects one
    assert st.children(by["d"]) == []


def test_a_pipeline_file_honours_cwd_name_kernel_env_and_progress(tmp_path: Path, workspace, capfd) -> None:
    """pipelines.run(pipe.yaml, ...) gives every notebook step the same cwd, kernel_env and progress
    as a notebook run gets, and records the run under ``name``; an option it does not take is
    refused by Python in one line (it used to vanish into ``**options``)."""
    write_nb(tmp_path / "where.ipynb", ["x = 0", "import os, cellops\n"
                                        "cellops.pipelines.record(cwd=os.getcwd(), flag=os.environ.get('T_FLAG', ''))"])
    (tmp_path / "pipe.yaml").write_text("name: demo\nsteps:\n  w: {notebook: where.ipynb}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = pipelines.run(tmp_path / "pipe.yaml", cwd=elsewhere, kernel_env={"T_FLAG": "on"}, name="nightly",
                      progress=True)
    assert r.status == "ok", r.record
    assert r.record["steps"]["w"]["values"] == {"cwd": str(elsewhere.resolve()), "flag": "on"}
    assert workspace.get_run(r.id)["name"] == "nightly" and r.record["kernel_env"] == {"T_FLAG": "on"}
    assert "Executing" in capfd.readouterr().err  # papermill's per-cell progress bar
    with pytest.raises(TypeError, match="unexpected keyword argument 'cwdir'"):
        pipelines.run(tmp_path / "pipe.yaml", cwdir=elsewhere)


def test_replay_matches_seeded_generation_and_flags_changes(tmp_path: Path, workspace) -> None:
    nb = write_nb(tmp_path / "gen.ipynb", [
        "question = 'What is the capital of France?'",
        "import cellops\nprompt, _ = cellops.prompts.save('qa', 'Question: {{ question }}\\nAnswer:',"
        " params={'max_tokens': 12})\nr = cellops.prompts.run('qa', {'question': question})\nprint(r.text)",
        "r",
        "import random\nprint(random.random())",  # unseeded: must be flagged
    ])
    r = pipelines.run(nb)
    assert r.ok and r.record["touched"]["prompt"] == ["qa@1"] and r.record["touched"]["model"] == ["default"]
    assert r.record["seeds"] and [x["kind"] for x in r.record["runs"]] == ["prompt"]
    assert r.record["versions_created"][0]["name"] == "qa"
    rep = pipelines.replay(r.id)
    status = [c.status for c in rep.cells]
    assert status[:2] == ["match", "match"]  # parameters + the generated text, exactly
    assert status[2] == "match (volatile)"  # the result object: run id + latency vary
    replayed = workspace.get_run(rep.replay_run_id)["record"]["output_notebook"]
    assert "· cached ·" not in Path(replayed).read_text()  # the replay generated again (cache off)
    assert status[3] == "differs" and not rep.matched and "replay" in rep.cells[3].diff
    assert workspace.get_run(rep.replay_run_id)["record"]["replay"]["of"] == r.id
    assert "outputs DIFFER" in str(rep)
    # a second run is answered from the response cache; its replay (cache off) still matches
    again = pipelines.run(nb)
    assert "· cached ·" in Path(again.record["output_notebook"]).read_text()
    rep2 = pipelines.replay(again.id)
    assert rep2.cells[2].status == "match (volatile)" and "cache" in rep2.cells[2].volatile
    assert rep2.cells[1].status == "match"
    # report over both runs: self-contained HTML
    report = pipelines.report([r.id, rep.replay_run_id], html_path=tmp_path / "rep.html")
    page = (tmp_path / "rep.html").read_text()
    assert report.path == (tmp_path / "rep.html").resolve() and report.metrics == {}
    assert r.id in page and "Versions touched" in page and "<script" not in page


def test_report_charts_metrics_and_parameter_diffs(tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "m.ipynb", ["k = 1", "import cellops\ncellops.pipelines.record(acc=k / 10, loss=1 / k)"])
    ids = [pipelines.run(nb, {"k": k}).id for k in (1, 2, 4)]
    rep = pipelines.report(ids, html_path=tmp_path / "r.html")
    assert rep.metrics["acc"] == {ids[0]: 0.1, ids[1]: 0.2, ids[2]: 0.4}
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 2 and page.count("<polyline") == 2 and "<script" not in page
    assert "Parameters" in page and "<td>k</td><td>1</td><td>2</td><td>4</td>" in page
    assert json.dumps(0.4) in page or "0.4" in page
    first, second = pipelines.report(ids[:1]), pipelines.report(ids[:1])  # the same second
    assert first.path != second.path and first.path.is_file() and second.path.is_file()


def test_an_output_path_that_cannot_be_used_is_refused_before_the_run(tmp_path: Path, workspace) -> None:
    nb = write_nb(tmp_path / "ok.ipynb", ["n = 3", "import cellops\ncellops.pipelines.record(score=n)"])
    taken = tmp_path / "afile"
    taken.write_text("hi")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        pipelines.run(nb, out_dir=taken)
    (tmp_path / "valuesdir").mkdir()
    p = cli("run", str(nb), "--values-out", str(tmp_path / "valuesdir"), cwd=tmp_path)
    assert p.returncode == 2 and "is a folder" in p.stderr and "Traceback" not in p.stderr
    assert pipelines.runs() == [] and taken.read_text() == "hi"  # nothing ran, nothing recorded


def test_a_copy_that_fails_after_the_run_still_records_it(tmp_path: Path, workspace, monkeypatch) -> None:
    from cellops.kernels_lib.pipelines import execute

    def broken(record, out_dir):
        raise PermissionError(13, "Permission denied", str(out_dir))

    monkeypatch.setattr(execute, "_copy_out", broken)
    nb = write_nb(tmp_path / "ok.ipynb", ["n = 3", "import cellops\ncellops.pipelines.record(score=n)"])
    r = pipelines.run(nb, out_dir=tmp_path / "out")
    stored = workspace.get_run(r.id)
    assert stored["status"] == "ok" and stored["record"]["values"] == {"score": 3}
    assert any("Permission denied" in w for w in stored["record"]["warnings"])
