"""Read-only views of a workspace as JSON-ready dicts, for the REST API and the sidebar.

Everything here goes through the kernels_lib Workspace API on a :class:`ReadOnlyWorkspace`:
nothing writes, not even a migration, since the server may be pointed at any folder under its
root (a cloned repository included). A folder without a ``.cellops/cellops.db`` is *not* turned
into a workspace: it simply has nothing to show, so opening JupyterLab somewhere never litters it
with an empty store. A database from a newer cellops (migrations this one does not know) gives
one line; one from an older cellops is shown as far as its tables go.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from ..kernels_lib.errors import CellopsError, NotFoundError, WorkspaceError
from ..kernels_lib.migrations import MIGRATIONS
from ..kernels_lib.records import RunRecord
from ..kernels_lib.workspace import Version, Workspace, _db_error
from . import jobs

T = TypeVar("T")

MAX_FILE_BYTES = 1_000_000  # the file endpoint serves cards, configs and logs, not weights
LIST_LIMIT = 200


class OutsideError(CellopsError):
    """A path that resolves outside the server root or the workspace (HTTP 403)."""


def locate(root_dir: str | os.PathLike[str], rel_dir: str = "") -> Path:
    """The .cellops folder for ``rel_dir`` (a folder under the server root, as the kernel of a
    notebook there would use it); CELLOPS_HOME wins, as it does for the kernels this server starts.
    """
    env = os.environ.get("CELLOPS_HOME")
    if env:
        return Path(env).expanduser().resolve()
    root = Path(root_dir).expanduser().resolve()
    rel = (rel_dir or "").strip().lstrip("/")
    base = (root / rel).resolve()
    if base != root and root not in base.parents:
        raise OutsideError(f"folder '{rel_dir}' is outside the server root; use a path under it")
    return base / ".cellops"


class ReadOnlyWorkspace(Workspace):
    """A workspace opened for reading: ``mode=ro`` connections, no migrations, no folders made.

    SQLite's read-only WAL reader creates the ``-wal`` and ``-shm`` files when they are missing
    and cannot remove them afterwards. No ``-wal`` means no writer has the database open and the
    file holds every commit, so then it is opened ``immutable=1`` (a snapshot: no locks, no side
    files). A writer that starts and checkpoints into the file during that read could tear the
    snapshot; :meth:`Reader.call` reads again when the file changed under it. When a ``-wal``
    exists, its writer owns the side files and plain ``mode=ro`` reads through them.
    """

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        try:
            self.missing = self._check_schema()
        except sqlite3.DatabaseError as e:
            raise _db_error(self.db_path, e) from e

    def _connect(self, shared: bool = False) -> sqlite3.Connection:
        snapshot = "" if Path(f"{self.db_path}-wal").exists() else "&immutable=1"
        try:
            conn = sqlite3.connect(f"{self.db_path.as_uri()}?mode=ro{snapshot}", uri=True, timeout=60,
                                   isolation_level=None)
            conn.execute("PRAGMA busy_timeout=60000")
        except sqlite3.DatabaseError as e:
            raise _db_error(self.db_path, e) from e
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if write:  # a read path that writes is a bug: keep its traceback
            raise RuntimeError(f"write to {self.db_path} through the server's read-only view")
        with super().db() as conn:
            yield conn

    def _check_schema(self) -> list[int]:
        """Our migrations this database lacks (older cellops); WorkspaceError for a newer one."""
        with self.db() as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "_migrations" not in tables:
                raise WorkspaceError(
                    f"{self.db_path} has no cellops tables (empty, truncated or not a cellops database); "
                    "open that folder from a notebook with cellops to see what to do")
            done = {r[0] for r in conn.execute("SELECT number FROM _migrations")}
        known = {number for number, _, _ in MIGRATIONS}
        if done - known:
            raise WorkspaceError(
                f"{self.db_path} was written by a newer cellops (migrations "
                f"{', '.join(map(str, sorted(done - known)))} are unknown to cellops {__version__}); "
                "upgrade cellops in this Jupyter server's environment to read it")
        return sorted(known - done)


class Reader:
    """One workspace folder, opened read-only; ``ws`` is None when there is no database yet."""

    def __init__(self, ws_dir: Path) -> None:
        self.ws_dir = ws_dir
        self.ws: ReadOnlyWorkspace | None = None
        if (ws_dir / "cellops.db").is_file():
            self.ws = ReadOnlyWorkspace(ws_dir)

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, read again if the database file changed meanwhile (a torn snapshot)."""
        try:
            before = self._stamp()
            result = fn()
            if self._stamp() != before:
                result = fn()
            return result
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e) or self.ws is None or not self.ws.missing:
                raise
            raise WorkspaceError(
                f"{self.ws.db_path} was made by an older cellops (without migrations "
                f"{', '.join(map(str, self.ws.missing))}); open that folder once from a notebook "
                "with cellops to upgrade it") from e

    def _stamp(self) -> tuple[int, int] | None:
        if self.ws is None:
            return None
        try:
            st = self.ws.db_path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    # -- helpers --------------------------------------------------------------------------------
    def _versions(self, kind: str) -> list[Version]:
        return self.ws.list_versions(kind) if self.ws is not None else []

    def _inside(self, path: str | os.PathLike[str]) -> Path:
        """``path`` (absolute, or relative to the workspace) if it stays inside the workspace."""
        p = Path(path)
        full = (p if p.is_absolute() else self.ws_dir / p).resolve()
        top = self.ws_dir.resolve()
        if full != top and top not in full.parents:
            raise OutsideError(f"'{path}' is outside the workspace {top.name}/; only its files can be read")
        return full

    # -- endpoints --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        if self.ws is not None:
            with self.ws.db() as conn:
                for kind, n in conn.execute("SELECT kind, COUNT(*) FROM versions GROUP BY kind"):
                    counts[kind] = n
                counts["runs"] = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return {"workspace": str(self.ws_dir), "exists": self.ws is not None, "counts": counts}

    def prompts(self) -> list[dict[str, Any]]:
        by_name: dict[str, list[Version]] = {}
        for v in self._versions("prompt"):
            by_name.setdefault(v.name, []).append(v)
        out = []
        for name, vs in by_name.items():
            latest = vs[-1]
            out.append({"name": name, "latest": latest.version, **_prompt_fields(latest),
                        "versions": [_version_head(v) for v in vs]})
        return out

    def prompt(self, name: str) -> dict[str, Any]:
        vs = self.ws.list_versions("prompt", name) if self.ws is not None else []
        if not vs:
            raise NotFoundError(f"no prompt named '{name}' in this workspace")
        runs = self.runs(kind="prompt", name=name, limit=20)
        return {"name": name, "versions": [_version_head(v) | _prompt_fields(v) for v in vs],
                "runs": runs}

    def prompt_diff(self, name: str, a: str, b: str) -> dict[str, Any]:
        if self.ws is None:
            raise NotFoundError(f"no prompt named '{name}' in this workspace")
        from ..kernels_lib.prompts.store import diff  # the same text as `%prompt diff`

        ref_a, ref_b = f"{name}@{a}", f"{name}@{b}"
        return {"a": ref_a, "b": ref_b, "diff": diff(ref_a, ref_b, self.ws)}

    def runs(self, kind: str | None = None, name: str | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        if self.ws is None:
            return []
        rows = self.ws.list_runs(kind or None, name or None, limit=min(max(limit, 1), LIST_LIMIT))
        return [_run_summary(r) for r in rows]

    def run(self, run_id: str) -> dict[str, Any]:
        if self.ws is None:
            raise NotFoundError(f"no run '{run_id}' in this workspace")
        r = self.ws.get_run(run_id)
        return _run_summary(r) | {"record": r["record"]}

    def traces(self, name: str | None = None, status: str | None = None, since: str | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
        """Trace summaries, newest first (``%trace list``'s rows)."""
        if self.ws is None:
            return []
        from ..kernels_lib.tracking import traces

        found = traces.search(name or None, since or None, status or None,
                              min(max(limit, 1), LIST_LIMIT), workspace=self.ws)
        return [t.to_dict() for t in found]

    def trace(self, trace_id: str) -> dict[str, Any]:
        """One trace with every span (the waterfall's data), by id, id prefix or run id."""
        if self.ws is None:
            raise NotFoundError(f"no trace '{trace_id}' in this workspace")
        from ..kernels_lib.tracking import traces

        return traces.get(trace_id, self.ws).to_dict()

    def indexes(self) -> list[dict[str, Any]]:
        return [self._artifact_view(v) for v in self._versions("index")]

    def models(self) -> list[dict[str, Any]]:
        out = []
        for v in self._versions("model"):
            view = self._artifact_view(v)
            view["card"] = _read_json(Path(view["path"]) / "card.json") if view["path"] else None
            out.append(view)
        return out

    def datasets(self) -> list[dict[str, Any]]:
        """Dataset versions with their cards (the card file sits in the version's folder)."""
        out = []
        for v in self._versions("dataset"):
            view = self._artifact_view(v)
            view["card"] = _read_json(Path(view["path"]) / "card.json") if view["path"] else None
            out.append(view)
        return out

    def _artifact_view(self, v: Version) -> dict[str, Any]:
        assert self.ws is not None
        d = self.ws.artifact_dir(v.kind, v.name, v.version)
        size, files = _dir_size(d)
        return _version_head(v) | {"content": _shorten(v.content), "size_bytes": size,
                                   "files": files, "path": str(d) if d.is_dir() else None}

    def jobs(self) -> list[dict[str, Any]]:
        if self.ws is None:
            return []
        return [jobs.job_view(r, self._events_path(r)) for r in self.ws.list_runs("finetune", limit=100)]

    def job(self, run_id: str, since: int = 0) -> dict[str, Any]:
        if self.ws is None:
            raise NotFoundError(f"no fine-tuning job '{run_id}' in this workspace")
        r = self.ws.get_run(run_id)
        return jobs.job_view(r, self._events_path(r), with_events_since=since)

    def _events_path(self, run: dict[str, Any]) -> Path | None:
        """The job's event file, only if it lies inside the workspace."""
        found = jobs.events_path(run["record"])
        if found is None and self.ws is not None:
            guess = self.ws.artifacts / "runs" / run["id"] / "events.jsonl"
            found = guess if guess.is_file() else None
        if found is None:
            return None
        try:
            return self._inside(found)
        except OutsideError:
            return None

    def schedules(self) -> list[dict[str, Any]]:
        if self.ws is None:
            return []
        return jobs.schedules(self.ws)

    def file(self, path: str) -> dict[str, Any]:
        full = self._inside(path)
        if not full.is_file():
            raise NotFoundError(f"no file '{path}' in the workspace")
        size = full.stat().st_size
        with open(full, "rb") as f:
            data = f.read(MAX_FILE_BYTES)
        return {"path": str(full.relative_to(self.ws_dir.resolve())), "size_bytes": size,
                "truncated": size > MAX_FILE_BYTES, "text": data.decode("utf-8", "replace")}


def _version_head(v: Version) -> dict[str, Any]:
    return {"name": v.name, "version": v.version, "ref": v.ref, "hash": v.hash,
            "aliases": list(v.aliases), "created_at": v.created_at}


def _prompt_fields(v: Version) -> dict[str, Any]:
    c = v.content
    return {"template": c.get("template", ""), "system": c.get("system"),
            "params": c.get("params", {}), "tests": len(c.get("tests", []) or [])}


def _run_summary(r: dict[str, Any]) -> dict[str, Any]:
    """The columns a run list needs, from the run's typed record."""
    rec = RunRecord.from_row(r | {"record": r["record"] if isinstance(r.get("record"), dict) else {}})
    params = rec.params or getattr(rec, "config", None) or rec.extra.get("config") or {}
    params = params if isinstance(params, dict) else {}
    metrics = rec.metrics if "metrics" in rec.keys and "metrics" not in rec.extra else {
        # kinds that record their figures at the top level (rag-eval, prompt runs, ...)
        k: v for k, v in rec.extra.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {k: r.get(k) for k in ("id", "kind", "name", "version", "status", "created_at")} | {
        "params": dict(params), "metrics": dict(metrics), "model": rec.model, "source": rec.source,
        "output": str(rec.output)[:300] if rec.output is not None else None,
        "tracker": rec.tracker, "tracker_run_id": rec.tracker_run_id,
    }


def _shorten(content: dict[str, Any], limit: int = 400) -> dict[str, Any]:
    """Version content for a list row: long strings and big lists cut, so a list stays small."""
    out: dict[str, Any] = {}
    for k, v in content.items():
        if isinstance(v, str) and len(v) > limit:
            v = v[:limit] + "…"
        elif isinstance(v, list | dict) and len(json.dumps(v, default=str)) > limit:
            v = f"({type(v).__name__} of {len(v)})"
        out[k] = v
    return out


def _dir_size(d: Path) -> tuple[int, int]:
    total = files = 0
    for base, _dirs, names in os.walk(d):
        for n in names:
            try:
                total += os.stat(os.path.join(base, n)).st_size
                files += 1
            except OSError:
                continue  # a file removed while we walk
    return total, files


def _read_json(p: Path) -> Any:
    try:
        if p.is_file() and p.stat().st_size <= MAX_FILE_BYTES:
            return json.loads(p.read_text())
    except (OSError, ValueError):
        return {"error": f"{p.name} is not valid JSON"}
    return None
