"""Workspace faults found by probing it as a user would: a truncated database, processes opening
a new workspace at once, a save landing on a folder no version owns, a corrupt stored version."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cellops
from cellops.kernels_lib import workspace as wsmod
from cellops.kernels_lib.errors import WorkspaceError
from cellops.kernels_lib.workspace import Workspace

SRC = str(Path(cellops.__file__).resolve().parents[1])  # the cellops under test, in subprocesses too
CLI = [sys.executable, "-c", "import sys; from cellops.cli import main; sys.exit(main())"]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "CELLOPS_HOME": str(home), "PYTHONPATH": SRC, "CELLOPS_WANDB": "off"}


def _save_index(ws: Workspace, name: str, data: bytes) -> int:
    staging = ws.staging_dir()
    (staging / "data.bin").write_bytes(data)
    return ws.save_version("index", name, {"data": data.decode()}, artifact=staging)[0].version


def test_truncated_database_is_refused_and_nothing_is_touched(workspace: Workspace) -> None:
    _save_index(workspace, "docs", b"version one")
    folder = workspace.artifact_dir("index", "docs", 1)
    for suffix in ("-wal", "-shm"):
        Path(str(workspace.db_path) + suffix).unlink(missing_ok=True)
    workspace.db_path.write_bytes(b"")  # truncated to 0 bytes (a full disk, a bad copy)
    before = sorted(p.name for p in workspace.root.iterdir())
    proc = subprocess.run([*CLI, "runs"], env=_env(workspace.root),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no cellops tables" in lines[0] and "restore cellops.db" in lines[0]
    assert "index/docs/v1" in lines[0]
    assert workspace.db_path.stat().st_size == 0  # not migrated, not switched to WAL
    assert sorted(p.name for p in workspace.root.iterdir()) == before
    assert (folder / "data.bin").read_bytes() == b"version one"
    wsmod._migrated.discard(str(workspace.db_path))  # as a fresh process sees it
    with pytest.raises(WorkspaceError, match="has no cellops tables"):
        Workspace(workspace.root)
    workspace.db_path.unlink()
    wsmod._migrated.discard(str(workspace.db_path))
    with pytest.raises(WorkspaceError, match="is missing but .* holds 1 version folder"):
        Workspace(workspace.root)
    assert (folder / "data.bin").read_bytes() == b"version one"


def test_save_never_deletes_a_version_folder_it_does_not_own(workspace: Workspace) -> None:
    orphan = workspace.artifact_dir("index", "docs", 1)  # e.g. the database came from a backup
    orphan.mkdir(parents=True)
    (orphan / "data.bin").write_bytes(b"older build")
    assert _save_index(workspace, "docs", b"new build") == 2
    assert (orphan / "data.bin").read_bytes() == b"older build"
    assert (workspace.artifact_dir("index", "docs", 2) / "data.bin").read_bytes() == b"new build"
    assert workspace.resolve("index", "docs").version == 2
    assert _save_index(workspace, "docs", b"third") == 3  # numbering goes on from the row


def test_new_workspaces_opened_by_many_processes_at_once(tmp_path: Path) -> None:
    # 4 real processes open the same new workspace together, 16 times over (one new workspace
    # every 0.3 s, so one start-up of each process covers many races)
    code = ("import sys, time; from pathlib import Path; import cellops\n"
            "base, t0, me, bad = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], []\n"
            "for k in range(16):\n"
            "    while time.time() < t0 + 0.3 * k: time.sleep(0.0002)\n"
            "    try:\n"
            "        cellops.get_workspace(base / f'w{k}').set_state('k' + me, 1)\n"
            "    except Exception as e:\n"
            "        bad.append(f'w{k}: {e}')\n"
            "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    t0 = time.time() + 4
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(t0), str(i)],
                              env=_env(tmp_path / "unused"), stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    failed = [(p.wait(timeout=180), p.stdout.read()) for p in procs]
    assert not [out for rc, out in failed if rc != 0 or out.strip()], failed
    for k in range(16):
        conn = sqlite3.connect(tmp_path / f"w{k}" / "cellops.db")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM state").fetchone()[0] == 4


def test_opening_waits_while_another_process_sets_up_the_new_database(tmp_path: Path) -> None:
    # the moment two processes race for: one holds the brand-new database's write lock (in
    # rollback mode, before WAL), the other's switch to WAL is refused at once, without
    # SQLite's busy handler
    home = tmp_path / "ws"
    home.mkdir()
    holder = sqlite3.connect(home / "cellops.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    code = "import cellops; print(cellops.get_workspace().get_state('x', 'opened'))"
    opener = subprocess.Popen([sys.executable, "-c", code], env=_env(home), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    holder.execute("COMMIT")
    holder.close()
    out, err = opener.communicate(timeout=120)
    assert opener.returncode == 0 and out.strip() == "opened", err


def test_only_real_corruption_is_told_to_move_the_file_aside(tmp_path: Path) -> None:
    home = tmp_path / "bad"
    home.mkdir()
    (home / "cellops.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(WorkspaceError, match=r"is corrupt \(file is not a database\); move it aside"):
        Workspace(home)
    err = wsmod._db_error(home / "cellops.db", sqlite3.OperationalError("database is locked"))
    assert "move it aside" not in str(err) and "try again" in str(err)


def test_corrupt_stored_version_is_one_line_and_resaving_repairs_it(workspace: Workspace) -> None:
    workspace.save_version("guard", "mine", {"yaml": "extends: default", "spec": {}})
    with workspace.db(write=True) as conn:
        conn.execute("UPDATE versions SET content='{\"yaml\": tru' WHERE name='mine'")
    with pytest.raises(WorkspaceError, match=r"stored guard mine@1 is corrupt .*save mine again"):
        workspace.resolve("guard", "mine")
    v, created = workspace.save_version("guard", "mine", {"yaml": "extends: default", "spec": {}})
    assert (v.version, created) == (1, False) and workspace.resolve("guard", "mine").content["spec"] == {}
