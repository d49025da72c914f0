"""A workspace's artifact folders: version folders, staging folders and per-name build locks.

Staging folders are named ``<host>.<pid>.<uuid>``, so the ones a killed process left behind are
found and removed without touching one a live process is writing; a folder named in workspace
state (a killed build waiting to resume) is kept until its build resumes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import WorkspaceError
from .liveness import HOST, host_tag, pid_alive
from .locks import Busy, hold

VERSION_DIR_RE = re.compile(r"^v[0-9]+$")


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by a new file holding ``text``: a reader never sees half of it, and a
    hard link to the old file (a replay's snapshot) keeps the old content."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ArtifactFolders:
    """Mixed into Workspace (which provides ``artifacts``, ``db``, ``get_state``, ``set_state``)."""

    artifacts: Path

    def artifact_dir(self, kind: str, name: str, version: int) -> Path:
        return self.artifacts / kind / name / f"v{version}"

    def version_folders(self) -> list[Path]:
        """Artifact folders laid out as versions (``artifacts/KIND/NAME/vN``), sorted."""
        if not self.artifacts.is_dir():
            return []
        return sorted(p for p in self.artifacts.glob("*/*/v*")
                      if not p.parts[-3].startswith(".") and VERSION_DIR_RE.match(p.name) and p.is_dir())

    def staging_dir(self) -> Path:
        """A fresh folder to write a new artifact into before ``save_version``."""
        self.sweep_staging()
        d = self._staging_path()
        d.mkdir(parents=True)
        return d

    def _staging_path(self) -> Path:
        return self.artifacts / ".staging" / f"{host_tag()}.{os.getpid()}.{uuid.uuid4().hex}"

    def resume_staging(self, state_key: str) -> Path:
        """A staging folder for work that can resume after a kill (hold the build lock).

        The folder a killed predecessor left (its path is kept in state ``state_key``) is moved
        into a fresh folder owned by this process, so what it saved is carried over and survives
        a second kill too. Call ``set_state(state_key, None)`` once the work is saved.
        """
        old = self.get_state(state_key)  # type: ignore[attr-defined]
        new = self._staging_path()
        new.parent.mkdir(parents=True, exist_ok=True)
        try:
            if not old:
                raise FileNotFoundError
            os.rename(old, new)
        except (FileNotFoundError, NotADirectoryError):
            new.mkdir()
        self.set_state(state_key, str(new))  # type: ignore[attr-defined]
        return new

    def sweep_staging(self) -> int:
        """Remove staging folders whose owner process is gone (not those kept for a resume)."""
        root = self.artifacts / ".staging"
        if not root.is_dir():
            return 0
        with self.db() as conn:  # type: ignore[attr-defined]
            kept = {json.loads(r[0]) for r in conn.execute("SELECT value FROM state")
                    if r[0].startswith('"')}
        removed = 0
        for d in root.iterdir():
            if str(d) not in kept and _staging_is_stale(d):
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed

    @contextmanager
    def build_lock(self, kind: str, name: str) -> Iterator[None]:
        """Hold the one build of ``kind`` ``name`` (an flock: the kernel frees it when the holder
        dies, however it dies); a second builder fails at once, naming the holder's pid."""
        from .workspace import check_name

        locks = self.artifacts / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        try:
            f = hold(locks / f"{kind}.{check_name(name)}.lock", f"{os.getpid()} on {HOST}")
        except Busy as e:
            raise WorkspaceError(f"{kind} {name} is being built by pid {e.holder or '?'}; wait for "
                                 "that build to finish (or stop it) and run again") from None
        try:
            yield
        finally:
            f.truncate(0)
            f.close()  # closing the file releases the lock


def _staging_is_stale(d: Path) -> bool:
    host, _, rest = d.name.partition(".")
    pid = rest.partition(".")[0]
    if host == host_tag() and pid.isdigit():
        return not pid_alive(int(pid))
    if re.fullmatch(r"[0-9a-f]{32}", d.name):  # unnamed (older cellops): stale after a day
        try:
            return time.time() - d.stat().st_mtime > 86400
        except OSError:
            return False
    return False  # another host's: only that host can tell whether its owner lives



