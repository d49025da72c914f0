"""A copy of a workspace as it was at a moment: what a replay runs in.

A replay in the live workspace sees what the run itself made: ``colours`` resolves to the
fine-tune the run registered and trains ``colours@2``, a prompt saved by the run is "unchanged"
instead of "new version". ``snapshot(ws, at, dest)`` copies the database (SQLite backup) and
drops every version, alias target, run and run tag made at or after ``at``; artifact folders of
the versions kept are hard-linked (versions are immutable: new content always goes to a new
folder), so the copy costs no disk for weights and indexes. Pipeline run folders stay behind.
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
    finally:
        src.close()
        out.close()
    _link_tree(ws.artifacts, dest / "artifacts", kept)
    return Workspace(dest)


def _link_tree(src: Path, dst: Path, kept: set[tuple[str, str, str]]) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(src).parts
        if not rel:
            return {n for n in names if n in _SKIP}
        if len(rel) == 2:  # artifacts/KIND/NAME: keep only version folders that still exist
            return {n for n in names if VERSION_DIR_RE.match(n) and (*rel, n) not in kept}
        return set()

    shutil.copytree(src, dst, copy_function=_link, ignore=ignore, symlinks=True, dirs_exist_ok=True)


def _link(a: str, b: str) -> None:
    try:
        os.link(a, b)
    except OSError:  # another filesystem, or links not allowed: a real copy
        shutil.copy2(a, b)
