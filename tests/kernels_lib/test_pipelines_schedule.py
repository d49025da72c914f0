"""The scheduler: real firings of real notebooks, retries, timeouts, hooks, overlap, missed runs,
the one-scheduler lock, and a minute-level cron run by the `cellops scheduler` process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_pipelines import write_nb

from cellops.kernels_lib.errors import JobError
from cellops.kernels_lib.pipelines import airflow, schedules
from cellops.kernels_lib.pipelines.scheduler import running, serve


def _serving(ws, poll: float = 0.5):
    stop, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=serve, kwargs={"workspace": ws, "poll": poll, "stop": stop,
                                               "on_ready": ready.set}, daemon=True)
    t.start()
    assert ready.wait(60)
    return stop, t


def _wait_for(pred, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out; events: {[(e['schedule'], e['event'], e['detail']) for e in schedules.events()]}")


def _events(name: str) -> list[str]:
    return [e["event"] for e in schedules.events(name)]


def test_retries_hook_timeout_and_overlap(tmp_path: Path, workspace) -> None:
    write_nb(tmp_path / "broken.ipynb", ["x = 1", "raise RuntimeError('nightly regression')"])
    write_nb(tmp_path / "slow.ipynb", ["secs = 300", "import time\ntime.sleep(secs)"])
    hook_out = tmp_path / "hook.txt"
    schedules.add(tmp_path / "broken.ipynb", every=3600, name="broken", retries=1, retry_delay=0,
                  on_failure=f"echo $CELLOPS_SCHEDULE $CELLOPS_RUN_ID \"$CELLOPS_RUN_ERROR\" >> {hook_out}")
    schedules.add(tmp_path / "slow.ipynb", every=1, name="slow", timeout=25)
    schedules.set_next_run("broken", datetime.now().astimezone())
    stop, t = _serving(workspace)
    with pytest.raises(JobError, match="a scheduler is already running"):
        serve(workspace)  # the lock holds within one process too
    try:
        _wait_for(lambda: "hook" in _events("broken") and "failed" in _events("slow"), 240)
    finally:
        stop.set()
        t.join(120)
    assert not t.is_alive() and running(workspace) is None
    ev = schedules.events("broken")
    assert [e["event"] for e in ev] == ["started", "attempt_failed", "attempt_failed", "failed", "hook"]
    assert [e["attempt"] for e in ev[1:3]] == [1, 2]
    last_run = ev[3]["run_id"]
    assert workspace.get_run(last_run)["status"] == "failed"
    assert hook_out.read_text().split()[:2] == ["broken", last_run]
    assert "RuntimeError: nightly regression" in hook_out.read_text()
    slow = schedules.events("slow")
    assert "skipped_overlap" in [e["event"] for e in slow]  # every 1 s, one run at a time
    failed = next(e for e in slow if e["event"] == "attempt_failed")
    assert "timed out" in failed["detail"] and "25s" in failed["detail"]
    run = workspace.get_run(failed["run_id"])
    assert run["status"] == "failed" and run["record"]["error"]["kind"] == "timeout"


def test_missed_runs_are_caught_up_once_or_recorded(tmp_path: Path, workspace) -> None:
    write_nb(tmp_path / "ok.ipynb", ["n = 1", "import cellops\ncellops.pipelines.record(n=n)"])
    # daily crons half a day away, so that no slot of theirs falls in the two hours "missed" below
    # (a fixed 03:00 made a run between 03:00 and 05:00 catch up the 03:00 slot instead)
    now = datetime.now().astimezone()
    hour_a, hour_b = (now + timedelta(hours=12)).hour, (now + timedelta(hours=13)).hour
    schedules.add(tmp_path / "ok.ipynb", cron=f"0 {hour_a} * * *", name="catchup", params={"n": 5})
    schedules.add(tmp_path / "ok.ipynb", cron=f"0 {hour_b} * * *", name="strict", catch_up=False)
    # as if the scheduler had been down through both runs
    two_hours_ago = now - timedelta(hours=2)
    schedules.set_next_run("catchup", two_hours_ago)
    schedules.set_next_run("strict", two_hours_ago)
    stop, t = _serving(workspace)
    try:
        _wait_for(lambda: "ok" in _events("catchup") and "missed" in _events("strict"), 180)
    finally:
        stop.set()
        t.join(120)
    started = schedules.events("catchup")[0]
    assert started["event"] == "started" and "late by" in started["detail"]
    assert abs(started["scheduled_for"] - two_hours_ago.timestamp()) < 1
    run_id = schedules.events("catchup")[1]["run_id"]
    assert workspace.get_run(run_id)["record"]["values"] == {"n": 5}
    assert workspace.get_run(run_id)["record"]["schedule"] == "catchup"
    assert _events("strict") == ["missed"]
    # both are back on their cron for the next day
    nxt = {s.name: s.next_run for s in schedules.list_schedules()}
    assert nxt["catchup"].hour == hour_a and nxt["strict"].hour == hour_b


@pytest.mark.slow
def test_cli_scheduler_runs_a_minute_cron_and_refuses_a_second(tmp_path: Path, workspace) -> None:
    write_nb(tmp_path / "tick.ipynb", ["n = 1", "import cellops\ncellops.pipelines.record(n=n)"])
    cmd = [sys.executable, "-c", "import sys; from cellops.cli import main; sys.exit(main(sys.argv[1:]))"]
    first = subprocess.Popen([*cmd, "scheduler", "--poll", "1"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert "cellops scheduler running" in first.stdout.readline()
        second = subprocess.run([*cmd, "scheduler"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert second.returncode == 2 and "a scheduler is already running" in second.stderr
        assert f"pid {first.pid}" in second.stderr and running(workspace)
        # added while the scheduler runs (another process): picked up through the shared store
        add = subprocess.run([*cmd, "schedule", "add", "tick.ipynb", "--cron", "* * * * *", "-p", "n", "3"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert add.returncode == 0 and "scheduled 'tick'" in add.stdout
        _wait_for(lambda: "ok" in _events("tick"), 150)
    finally:
        first.terminate()
        out, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and "scheduler stopped" in out
    ok = next(e for e in schedules.events("tick") if e["event"] == "ok")
    assert datetime.fromtimestamp(ok["scheduled_for"]).second == 0  # fired on the minute
    assert workspace.get_run(ok["run_id"])["record"]["values"] == {"n": 3}


def test_schedules_not_added_here_need_consent(tmp_path: Path, workspace, monkeypatch) -> None:
    """A cloned workspace: its author added the schedule (their own trust file), so this user's
    scheduler refuses it in one line and runs nothing, until `cellops scheduler --trust`."""
    write_nb(tmp_path / "broken.ipynb", ["raise RuntimeError('boom')"])
    marker, planted = tmp_path / "hook-ran", tmp_path / "planted-ran"
    monkeypatch.setenv("CELLOPS_CONFIG_DIR", str(tmp_path / "author-config"))
    schedules.add(tmp_path / "broken.ipynb", every=3600, name="nightly", on_failure=f"touch {marker}")
    schedules.set_next_run("nightly", datetime.now().astimezone())
    monkeypatch.setenv("CELLOPS_CONFIG_DIR", str(tmp_path / "my-config"))
    stopped = threading.Event()
    stopped.set()  # without the refusal, serve would start and return at once
    with pytest.raises(JobError) as e:
        serve(workspace, stop=stopped)
    assert str(e.value) == (
        f"1 schedule(s) in {workspace.root} were not added by you on this machine (nightly); they run "
        "notebooks and shell commands (on_failure): check them with `cellops schedule list`, then start "
        "`cellops scheduler --trust` to trust them")
    assert running(workspace) is None and _events("nightly") == []
    # the Airflow export's DAGs would run the same commands: refused too, nothing written
    with pytest.raises(JobError, match=r"not added by you on this machine \(nightly\).*--airflow DIR --trust"):
        airflow.export(tmp_path / "dags", workspace)
    assert not (tmp_path / "dags").exists()
    cmd = [sys.executable, "-c", "import sys; from cellops.cli import main; sys.exit(main(sys.argv[1:]))"]
    refused = subprocess.run([*cmd, "scheduler"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--trust" in refused.stderr
    first = subprocess.Popen([*cmd, "scheduler", "--trust", "--poll", "1"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert "cellops scheduler running" in first.stdout.readline()
        # a row that arrives later without consent (a `git pull` of the db) is never built
        spec = {**schedules.rows(workspace)[0].spec, "name": "pulled", "on_failure": f"touch {planted}"}
        with workspace.db(write=True) as conn:
            conn.execute("INSERT INTO schedules (name, spec, next_run, rev, created_at) VALUES (?, ?, ?, 1, ?)",
                         ("pulled", json.dumps(spec), time.time(), time.time()))
        _wait_for(lambda: "hook" in _events("nightly") and "untrusted" in _events("pulled"), 240)
    finally:
        first.terminate()
        first.communicate(timeout=120)
    assert marker.exists() and not planted.exists() and _events("pulled") == ["untrusted"]


def test_a_notebook_changed_behind_the_schedule_is_not_run(tmp_path: Path, workspace, monkeypatch,
                                                           capsys) -> None:
    """Consent covers the notebook's code too: an edit saved in the user's own Jupyter keeps it
    (the daily loop needs no extra step) and runs; code that arrived otherwise (a `git pull`)
    is not run, the schedule's own on_failure hook says so, and `cellops schedule trust` consents."""
    import nbformat
    from jupyter_server.services.contents.filemanager import FileContentsManager

    from cellops.cli import main
    from cellops.server import vouch_for_saved

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))  # the notary's signatures
    nb_path = write_nb(tmp_path / "nightly.ipynb", ["x = 1", "print('first')"])
    hook_out, marker = tmp_path / "hook.txt", tmp_path / "pulled-code-ran"
    schedules.add(nb_path, every=3600, name="nightly", on_failure=f'echo "$CELLOPS_RUN_ERROR" > {hook_out}')
    spec = schedules.rows(workspace)[0].spec
    cm = FileContentsManager(root_dir=str(tmp_path))
    cm.register_post_save_hook(vouch_for_saved)
    model = cm.get("nightly.ipynb")
    model["content"].cells[1].source = "print('edited in jupyter')"
    cm.save({"type": "notebook", "format": "json", "content": model["content"]}, "nightly.ipynb")
    assert schedules.untrusted_code(spec) is None
    run_id = schedules.fire(spec)
    assert _events("nightly")[-1] == "ok" and "edited in jupyter" in json.dumps(
        nbformat.read(workspace.get_run(run_id)["record"]["output_notebook"], as_version=4).cells[1].outputs)

    pulled = nbformat.read(str(nb_path), as_version=4)
    pulled.cells[1].outputs = [nbformat.v4.new_output("stream", text="re-run elsewhere\n")]
    nbformat.write(pulled, str(nb_path))
    assert schedules.untrusted_code(spec) is None  # outputs run nothing: still the vouched-for code
    pulled.cells[1].source = f"open({str(marker)!r}, 'w').close()"
    nbformat.write(pulled, str(nb_path))  # as a `git pull` writes it: not through Jupyter
    assert schedules.fire(spec) == "" and not marker.exists()
    refused, hook = schedules.events("nightly")[-2:]
    assert (refused["event"], hook["event"]) == ("untrusted_code", "hook")
    assert "cellops schedule trust nightly" in refused["detail"]
    assert "changed since you trusted schedule nightly" in hook_out.read_text()
    assert main(["schedule", "trust", "nightly"]) == 0 and "trusted" in capsys.readouterr().out
    assert schedules.untrusted_code(spec) is None


def test_a_pipeline_schedule_binds_its_file_and_each_notebook_step(tmp_path: Path, workspace) -> None:
    from test_pipelines import _chain

    pipe = _chain(tmp_path, "steps:\n  a: {notebook: a.ipynb}\n  b: {notebook: b.ipynb, needs: [a]}\n")
    schedules.add(pipe, every=3600, name="pipe")
    spec = schedules.rows(workspace)[0].spec
    assert schedules.code_paths(spec) == [pipe.resolve(), tmp_path / "a.ipynb", tmp_path / "b.ipynb"]
    assert schedules.untrusted_code(spec) is None
    write_nb(tmp_path / "b.ipynb", ["model = 'x'\nfactor = 1.0", "import os"])  # a step's code changed
    assert "b.ipynb changed since you trusted schedule pipe" in schedules.untrusted_code(spec)
