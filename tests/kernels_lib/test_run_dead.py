"""A pipeline run SIGKILLed outside the scheduler shows as dead (pid gone or heartbeat stale),
derived when read; `cellops replay` re-runs it from its source copy."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from test_pipelines import write_nb

from cellops.kernels_lib import pipelines
from cellops.kernels_lib.liveness import HOST, STALE_S, run_status
from cellops.server.reader import Reader

CLI = [sys.executable, "-c", "import sys; from cellops.cli import main; sys.exit(main(sys.argv[1:]))"]


def test_killed_run_is_dead_and_replays_from_its_source_copy(tmp_path: Path, workspace) -> None:
    write_nb(tmp_path / "waits.ipynb", ["x = 2", "import os, time\nwhile not os.path.exists('go'): time.sleep(0.1)",
                                        "print(x * 21)"])
    proc = subprocess.Popen([*CLI, "run", "waits.ipynb"], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # recorded as running, with its owner's heartbeat
        runs = workspace.list_runs("pipeline")
        if runs and runs[0]["record"].get("owner") and runs[0]["status"] == "running":
            break
        time.sleep(0.2)
    (run,) = workspace.list_runs("pipeline")
    assert run["record"]["owner"] == {"pid": proc.pid, "host": HOST}
    os.killpg(proc.pid, signal.SIGKILL)  # the run's process and everything it started
    proc.wait()
    assert workspace.get_run(run["id"])["status"] == "dead"
    listing = subprocess.run([*CLI, "runs"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert any(run["id"] in ln and " dead " in ln for ln in listing.stdout.splitlines()), listing.stdout
    assert Reader(workspace.root).run(run["id"])["status"] == "dead"
    conn = sqlite3.connect(workspace.db_path)  # derived when read: the stored row is untouched
    assert conn.execute("SELECT status FROM runs WHERE id=?", (run["id"],)).fetchone()[0] == "running"
    (tmp_path / "go").touch()
    replay = pipelines.replay(run["id"], timeout=240)
    assert (replay.original_status, replay.replay_status, replay.matched) == ("dead", "ok", False)
    assert any(c.source.startswith("print(x * 21)") and c.status == "not run" for c in replay.cells)


def test_a_silent_owner_on_another_host_is_dead_after_the_stale_limit() -> None:
    now = time.time()
    away = {"owner": {"pid": 1, "host": HOST + "-elsewhere"}}
    assert run_status("running", away | {"heartbeat_at": now - 5}, now) == "running"
    assert run_status("running", away | {"heartbeat_at": now - STALE_S - 1}, now) == "dead"
    assert run_status("running", {"owner": {"pid": os.getpid(), "host": HOST}, "heartbeat_at": now}) == "running"
    assert run_status("ok", away | {"heartbeat_at": 0}, now) == "ok"
    assert run_status("running", {}, now) == "running"  # no owner recorded (e.g. a fine-tune): as stored


def test_replay_masks_the_timings_a_trace_waterfall_shows() -> None:
    from cellops.kernels_lib.pipelines.volatile import mask

    a = "<td>cellops.ttft_s</td><td>2.958319</td><span style='left:2.73%;width:0.20%'> 7 tokens"
    b = "<td>cellops.ttft_s</td><td>2.707744</td><span style='left:3.10%;width:0.18%'> 7 tokens"
    assert mask(a)[0] == mask(b)[0] and mask(a)[1] == {"timing"}
    assert mask("7 tokens")[0] != mask("8 tokens")[0]  # counts are not timings
