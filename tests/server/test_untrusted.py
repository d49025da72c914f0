"""A workspace from someone else (a cloned repository's .cellops/) is read without running its code
or writing to it: a planted pickle in APScheduler's old job table is never loaded by the CLI, the
kernels_lib listing, the scheduler or the server, and the server's GETs open databases read-only."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from cellops.kernels_lib.migrations import MIGRATIONS
from cellops.kernels_lib.pipelines import schedules
from cellops.kernels_lib.pipelines.scheduler import serve
from cellops.kernels_lib.workspace import get_workspace

CLI = [sys.executable, "-c", "import sys; from cellops.cli import main; sys.exit(main(sys.argv[1:]))"]
ENDPOINTS = ("status", "prompts", "runs", "indexes", "models", "jobs", "schedules")


class Plant:
    """Unpickling this creates the folder ``marker`` (as a real exploit would run a shell)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def payload(marker: Path) -> bytes:
    return pickle.dumps({"version": 1, "id": "nightly", "kwargs": {"spec": Plant(marker)}})


def old_database(db: Path, job_state: bytes, migrations: tuple[int, ...] = (1, 40)) -> None:
    """A cellops.db as an older cellops left it: WAL mode, only ``migrations`` applied,
    schedules in APScheduler's pickled table, one prompt version."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE _migrations (number INTEGER PRIMARY KEY, description TEXT, applied_at REAL)")
    for number, desc, sql in MIGRATIONS:
        if number in migrations:
            for stmt in filter(str.strip, sql.split(";")):
                conn.execute(stmt)
            conn.execute("INSERT INTO _migrations VALUES (?, ?, ?)", (number, desc, 0.0))
    conn.execute("CREATE TABLE IF NOT EXISTS apscheduler_jobs (id VARCHAR(191) NOT NULL PRIMARY KEY, "
                 "next_run_time FLOAT, job_state BLOB NOT NULL)")
    conn.execute("INSERT INTO apscheduler_jobs VALUES ('nightly', ?, ?)", (time.time() + 3600, job_state))
    conn.execute("INSERT INTO versions VALUES ('prompt', 'greet', 1, 'ab12', ?, ?)",
                 (json.dumps({"template": "Hello {{ name }}"}), time.time()))
    conn.close()


def snapshot(folder: Path) -> tuple[dict[str, bytes], dict[str, int]]:
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return files, {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_planted_pickle_is_never_loaded(server, tmp_path: Path) -> None:
    control = tmp_path / "control"
    pickle.loads(payload(control))  # the payload is live: loading it does run code
    assert control.is_dir()

    marker = tmp_path / "pwned"
    rel = f"u{uuid.uuid4().hex[:8]}"
    folder = server.root / rel
    old_database(folder / ".cellops" / "cellops.db", payload(marker))
    before = snapshot(folder / ".cellops")
    assert sorted(before[0]) == ["cellops.db"]  # no -wal / -shm after a clean close

    # the server, on a database it must neither migrate nor unpickle
    for endpoint in ENDPOINTS:
        r = server.get(endpoint, dir=rel)
        assert r.status_code == 200, (endpoint, r.text)
    listed = server.get("schedules", dir=rel).json()
    assert [(s["name"], s["paused"], s.get("unmoved")) for s in listed] == [("nightly", True, True)]
    assert [p["name"] for p in server.get("prompts", dir=rel).json()] == ["greet"]
    assert server.get("prompts/greet", dir=rel).json()["versions"][0]["template"] == "Hello {{ name }}"
    assert server.get("prompts/greet/diff", dir=rel, a="1", b="1").status_code == 200
    assert snapshot(folder / ".cellops") == before  # byte-identical, same mtimes, no side files
    assert not marker.exists()

    # the CLI: migrates (it is the user's own command) and names what it could not carry over
    env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
    out = subprocess.run([*CLI, "schedule", "list"], capture_output=True, text=True, cwd=folder,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "not carried over from an older cellops: nightly" in out.stdout
    assert not marker.exists()

    # kernels_lib and the scheduler process, on the migrated workspace
    ws = get_workspace(folder / ".cellops")
    got = schedules.list_schedules(ws)
    assert list(got) == [] and got.unmoved == ("nightly",)
    with ws.db(write=True) as conn:  # and a table planted again after the migration
        conn.execute("CREATE TABLE apscheduler_jobs (id TEXT PRIMARY KEY, next_run_time FLOAT, job_state BLOB)")
        conn.execute("INSERT INTO apscheduler_jobs VALUES ('again', 0, ?)", (payload(marker),))
    stop, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=serve, kwargs={"workspace": ws, "poll": 0.2, "stop": stop,
                                               "on_ready": ready.set}, daemon=True)
    t.start()
    assert ready.wait(60)
    time.sleep(1.0)  # a few re-reads of the rows
    stop.set()
    t.join(60)
    assert not t.is_alive()
    assert schedules.list_schedules(ws).unmoved == ("nightly",)
    assert [s["name"] for s in server.get("schedules", dir=rel).json()] == ["nightly"]
    assert not marker.exists()

    # forgetting the unmoved one clears the note
    schedules.remove("nightly", workspace=ws)
    assert schedules.list_schedules(ws).unmoved == ()


def test_newer_database_gives_one_line_and_stays_untouched(server) -> None:
    rel = f"n{uuid.uuid4().hex[:8]}"
    d = server.root / rel / ".cellops"
    old_database(d / "cellops.db", b"", migrations=tuple(n for n, _, _ in MIGRATIONS))
    with sqlite3.connect(d / "cellops.db") as conn:
        conn.execute("INSERT INTO _migrations VALUES (999, 'from the future', 0)")
    conn.close()
    before = snapshot(d)
    r = server.get("prompts", dir=rel)
    msg = r.json()["error"]
    assert r.status_code == 500 and "newer cellops" in msg and "999" in msg and "\n" not in msg
    assert snapshot(d) == before


def test_reads_see_a_live_writers_commits(server) -> None:
    """With a writer's -wal present the server reads through it (and adds no files of its own)."""
    rel = f"w{uuid.uuid4().hex[:8]}"
    d = server.root / rel / ".cellops"
    old_database(d / "cellops.db", b"", migrations=tuple(n for n, _, _ in MIGRATIONS))
    writer = sqlite3.connect(d / "cellops.db", isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")  # keep the commit in the WAL only
        writer.execute("INSERT INTO versions VALUES ('prompt', 'late', 1, 'cd34', '{}', 0)")
        names = sorted(os.listdir(d))
        assert "cellops.db-wal" in names
        got = [p["name"] for p in server.get("prompts", dir=rel).json()]
        assert got == ["greet", "late"]
        assert sorted(os.listdir(d)) == names
    finally:
        writer.close()
