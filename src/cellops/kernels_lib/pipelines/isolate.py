"""A copy of a workspace as it was at a moment: what a replay runs in.

A replay in the live workspace sees what the run itself made: ``colours`` resolves to the
fine-tune the run registered and trains ``colours@2``, a prompt saved by the run is "unchanged"
instead of "new version". ``snapshot(ws, at, dest)`` copies the database (SQLite backup) and
drops every version, alias target, run and run tag made at or after ``at``.

Files are hard-linked only where nothing ever writes in place, so the copy costs no disk for
weights and indexes and a replay can never change a live file: the folders of the versions kept
(versions are immutable: every writer builds a staging folder and renames it into place, and
no code writes inside a committed one) and the content-addressed ``hf-cache`` (made the same way
by ``models.hf.materialize``, named by its GGUF's hash). Everything else is really copied: a
writer that appends or rewrites a file (a fine-tune's event file and logs, a report) then
changes only the copy. Fine-tune run folders come only for runs the snapshot keeps, without
their checkpoints, final weights and W&B files (a replay re-runs notebooks; it never resumes
another run's training, and those are gigabytes written in place). Pipeline run folders stay
behind.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from ..artifacts import VERSION_DIR_RE
from ..workspace import Workspace

# top-level artifact folders a replay must not inherit: other runs' folders, in-flight writes
_SKIP = {"runs", ".staging", ".locks"}
# top-level folders made once by renaming a finished folder into place, never written after
_IMMUTABLE = {"hf-cache"}
RUN_FOLDERS = "finetune"  # artifacts/finetune/NAME/RUN (train.launch.RUNS)
_RUN_HEAVY = {"checkpoints", "final", "wandb"}  # inside a run folder: weights and W&B's own files


def snapshot(ws: Workspace, at: float, dest: Path) -> Workspace:
    """A workspace at ``dest`` holding ``ws`` as it was just before time ``at``."""
    dest.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{ws.db_path}?mode=ro", uri=True)
    out = sqlite3.connect(dest / "cellops.db")
    try:
        src.backup(out)
        with out:
            out.execute("DELETE FROM versions WHERE created_at >= ?", (at,))
            out.execute("DELETE FROM aliases WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE "
                        "v.kind = aliases.kind AND v.name = aliases.name AND v.version = aliases.version)")
            out.execute("DELETE FROM runs WHERE created_at >= ?", (at,))
            out.execute("DELETE FROM run_versions WHERE at >= ?", (at,))
        kept = {(k, n, f"v{v}") for k, n, v in out.execute("SELECT kind, name, version FROM versions")}
        runs = {r for (r,) in out.execute("SELECT id FROM runs")}
    finally:
        src.close()
        out.close()
    _copy_tree(ws.artifacts, dest / "artifacts", kept, runs)
    return Workspace(dest)


def _copy_tree(src: Path, dst: Path, kept: set[tuple[str, str, str]], runs: set[str]) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(src).parts
        if not rel:
            return {n for n in names if n in _SKIP}
        if len(rel) == 2 and rel[0] == RUN_FOLDERS:  # finetune/NAME: the runs the snapshot keeps
            return {n for n in names if n not in runs}
        if len(rel) == 3 and rel[0] == RUN_FOLDERS:
            return {n for n in names if n in _RUN_HEAVY}
        if len(rel) == 2:  # artifacts/KIND/NAME: keep only version folders that still exist
            return {n for n in names if VERSION_DIR_RE.match(n) and (*rel, n) not in kept}
        return set()

    def copy(a: str, b: str) -> None:
        rel = Path(a).relative_to(src).parts
        immutable = rel[0] in _IMMUTABLE or (
            len(rel) > 3 and rel[0] != RUN_FOLDERS and VERSION_DIR_RE.match(rel[2]) and tuple(rel[:3]) in kept)
        if immutable:
            _link(a, b)
        else:
            shutil.copy2(a, b)  # may be appended to or rewritten: the replay gets its own

    shutil.copytree(src, dst, copy_function=copy, ignore=ignore, symlinks=True, dirs_exist_ok=True)


def _link(a: str, b: str) -> None:
    try:
        os.link(a, b)
    except OSError:  # another filesystem, or links not allowed: a real copy
        shutil.copy2(a, b)
