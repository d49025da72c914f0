"""Workspace: versions, aliases, migrations, atomic artifacts, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

from cellops.kernels_lib.errors import InvalidInputError, NotFoundError, WorkspaceError
from cellops.kernels_lib.workspace import Workspace


def test_wal_mode_and_migrations_recorded(workspace: Workspace) -> None:
    conn = sqlite3.connect(workspace.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    numbers = [r[0] for r in conn.execute("SELECT number FROM _migrations ORDER BY number")]
    assert numbers[0] == 1 and numbers == sorted(set(numbers))
    assert (workspace.root / "artifacts").is_dir()


def test_versions_only_change_with_content(workspace: Workspace) -> None:
    v1, created1 = workspace.save_version("prompt", "greet", {"template": "hi"})
    v1b, created1b = workspace.save_version("prompt", "greet", {"template": "hi"})
    v2, created2 = workspace.save_version("prompt", "greet", {"template": "hello"})
    assert (created1, created1b, created2) == (True, False, True)
    assert v1b.version == 1 and v2.version == 2 and v1.hash != v2.hash
    assert workspace.resolve("prompt", "greet").version == 2
    assert workspace.resolve("prompt", "greet@1").content == {"template": "hi"}
    assert workspace.resolve("prompt", f"greet@{v1.hash[:8]}").version == 1


def test_alias_resolves_and_moves(workspace: Workspace) -> None:
    for t in ("a", "b", "c"):
        workspace.save_version("prompt", "p", {"t": t})
    workspace.set_alias("prompt", "p@2", "prod")
    assert workspace.resolve("prompt", "p@prod").version == 2
    workspace.set_alias("prompt", "p@3", "prod")
    v = workspace.resolve("prompt", "p@prod")
    assert v.version == 3 and v.aliases == ("prod",)
    with pytest.raises(InvalidInputError):
        workspace.set_alias("prompt", "p@1", "7")


def test_missing_names_and_versions_say_what_exists(workspace: Workspace) -> None:
    workspace.save_version("prompt", "p", {"t": 1})
    with pytest.raises(NotFoundError, match="available: p"):
        workspace.resolve("prompt", "nope")
    with pytest.raises(NotFoundError, match="versions: 1"):
        workspace.resolve("prompt", "p@9")
    with pytest.raises(InvalidInputError):
        workspace.save_version("prompt", "bad name", {})


def test_artifact_is_moved_into_place_atomically(workspace: Workspace) -> None:
    staging = workspace.staging_dir()
    (staging / "data.bin").write_bytes(b"x" * 10)
    v, _ = workspace.save_version("index", "docs", {"n": 1}, artifact=staging)
    dest = workspace.artifact_dir("index", "docs", v.version)
    assert (dest / "data.bin").read_bytes() == b"x" * 10 and not staging.exists()


def test_failed_commit_leaves_previous_version(workspace: Workspace, monkeypatch) -> None:
    workspace.save_version("index", "docs", {"n": 1})
    staging = workspace.staging_dir()
    (staging / "f").write_text("new")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        workspace.save_version("index", "docs", {"n": 2}, artifact=staging)
    assert workspace.resolve("index", "docs").version == 1
    assert [v.version for v in workspace.list_versions("index", "docs")] == [1]


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    root.mkdir()
    (root / "cellops.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkspaceError, match="move it aside"):
        Workspace(root)


def _writer(root: str, worker: int, n: int) -> None:
    ws = Workspace(Path(root))
    for i in range(n):
        ws.record_run("prompt", {"worker": worker, "i": i}, name=f"w{worker}")


def test_four_processes_recording_lose_nothing(workspace: Workspace) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(workspace.root), w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    runs = workspace.list_runs(kind="prompt", limit=1000)
    assert len(runs) == 200
    assert {(r["record"]["worker"], r["record"]["i"]) for r in runs} == {
        (w, i) for w in range(4) for i in range(50)}
