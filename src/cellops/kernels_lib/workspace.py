"""The .cellops workspace: one SQLite database (WAL, numbered migrations) + artifact folders.

Everything a user makes is a named, immutable, numbered *version* (prompt, guard policy, index,
model, dataset). ``NAME@V`` accepts a number, an alias (``prod``) or a hash prefix; plain ``NAME``
is the latest. Writes are transactional: artifacts are written to a temporary folder and renamed
into place in the same transaction that records the version, so a crash never leaves a
half-written version behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .artifacts import ArtifactFolders
from .errors import InvalidInputError, NotFoundError, WorkspaceError
from .liveness import HEARTBEAT_S, HOST, run_status
from .migrations import MIGRATIONS

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_migrated: set[str] = set()
_migrate_lock = threading.Lock()
T = TypeVar("T")
# Opening a new workspace from several processes at once makes SQLite answer "database is
# locked" while one of them switches the file to WAL or migrates (the busy handler is not used
# for every lock it needs then); those steps are retried with backoff for this long.
SETUP_WAIT_S = 30.0



def content_hash(content: Any) -> str:
    """sha256 of the canonical JSON of ``content`` (sorted keys, no whitespace)."""
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise InvalidInputError(
            f"invalid name {name!r}: use letters, digits, '_', '.', '-' (no spaces, no '@')"
        )
    return name


def _tag_run_version(conn: sqlite3.Connection, v: Version, action: str) -> None:
    """Tag ``v`` with the pipeline run this process works for (table run_versions): the run's
    record then lists exactly what it created, kept or resolved, whatever else ran meanwhile."""
    run_id = os.environ.get("CELLOPS_PIPELINE_RUN")
    if run_id:
        conn.execute("INSERT OR IGNORE INTO run_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (run_id, v.kind, v.name, v.version, v.hash, action, time.time()))


def split_ref(ref: str) -> tuple[str, str | None]:
    """'NAME@V' -> ('NAME', 'V'); 'NAME' -> ('NAME', None)."""
    name, _, spec = ref.partition("@")
    return check_name(name.strip()), (spec.strip() or None)


def _is_busy(e: sqlite3.Error) -> bool:
    msg = str(e).lower()
    return isinstance(e, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


def _with_retry(fn: Callable[[], T], wait_s: float | None = None) -> T:
    """``fn()``, retried with jittered exponential backoff while SQLite says locked / busy."""
    deadline = time.monotonic() + (SETUP_WAIT_S if wait_s is None else wait_s)
    delay = 0.02
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if not _is_busy(e) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 1.0)


def _db_error(path: Path, e: sqlite3.Error) -> WorkspaceError:
    """One line for a database problem; only real corruption is told to move the file aside."""
    msg = str(e)
    if _is_busy(e):
        return WorkspaceError(f"workspace database {path} stayed locked by another process for "
                              f"{SETUP_WAIT_S:.0f}s ({msg}); wait for it to finish and try again")
    if "not a database" in msg or "malformed" in msg:
        return WorkspaceError(f"workspace database {path} is corrupt ({msg}); move it aside "
                              "(mv cellops.db cellops.db.bad) to start a fresh workspace")
    return WorkspaceError(f"workspace database {path} cannot be used ({msg}); check that the "
                          "folder exists, is writable and has free space")


class CorruptVersion(WorkspaceError):
    """A stored version whose content no longer parses; ``ref`` names it (KIND NAME@V)."""

    def __init__(self, message: str, kind: str, ref: str) -> None:
        super().__init__(message)
        self.kind, self.ref = kind, ref


@dataclass(frozen=True)
class Version:
    kind: str
    name: str
    version: int
    hash: str
    content: dict[str, Any]
    created_at: float
    aliases: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass
class Workspace(ArtifactFolders):
    """A .cellops folder. Cheap to create; connections are opened per operation."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.artifacts.mkdir(exist_ok=True)
        except OSError as e:
            raise WorkspaceError(f"cannot create workspace at {self.root}: {e.strerror}") from e
        self._migrate()

    @property
    def db_path(self) -> Path:
        return self.root / "cellops.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    # -- database ---------------------------------------------------------------------------
    def _connect(self, shared: bool = False) -> sqlite3.Connection:
        try:
            conn = _with_retry(lambda: self._open_wal(shared))
        except sqlite3.DatabaseError as e:
            raise _db_error(self.db_path, e) from e
        conn.row_factory = sqlite3.Row
        return conn

    def _open_wal(self, shared: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None, check_same_thread=not shared)
        try:
            conn.execute("PRAGMA busy_timeout=60000")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")  # persistent: set once per database
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection inside one transaction (BEGIN IMMEDIATE when ``write``)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    @contextmanager
    def fast_write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this process's long-lived connection, for small frequent writes
        on a call's path (spans). Closing the last connection to a WAL database checkpoints and
        fsyncs (~40 ms on this disk), which :meth:`db` pays at every write; this connection stays
        open and commits with synchronous=NORMAL (atomic, never corrupt; a power loss may drop
        the last commits)."""
        conn, lock = _writer(self)
        with lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        key = str(self.db_path)
        with _migrate_lock:
            if key in _migrated:
                return
            self._refuse_lost_database()
            try:
                _with_retry(self._apply_migrations)
            except sqlite3.DatabaseError as e:
                raise _db_error(self.db_path, e) from e
            _migrated.add(key)

    def _apply_migrations(self) -> None:
        with self.db(write=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (number INTEGER PRIMARY KEY,"
                " description TEXT, applied_at REAL)"
            )
            done = {r[0] for r in conn.execute("SELECT number FROM _migrations")}
            for number, desc, sql in sorted(MIGRATIONS):
                if number in done:
                    continue
                for stmt in filter(str.strip, sql.split(";")):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO _migrations VALUES (?, ?, ?)", (number, desc, time.time())
                )

    def _refuse_lost_database(self) -> None:
        """A database without its migrations table (deleted, truncated to 0 bytes, replaced)
        beside artifact folders of versions it no longer knows would be taken for a new
        workspace, and its next save would land on those folders: refuse, touching nothing."""
        folders = self.version_folders()
        if not folders or self._has_migrations_table():
            return
        example = folders[0].relative_to(self.artifacts).as_posix()
        state = "is missing" if not self.db_path.exists() else "has no cellops tables (emptied or replaced)"
        raise WorkspaceError(
            f"workspace database {self.db_path} {state} but {self.artifacts} holds {len(folders)} "
            f"version folder(s) (e.g. {example}); restore cellops.db from a backup, or move "
            "artifacts aside (mv artifacts artifacts.orphaned) to start a fresh workspace"
        )

    def _has_migrations_table(self) -> bool:
        if not self.db_path.exists():
            return False

        def probe() -> bool:  # read-only: a refused database is left exactly as it was
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=60)
            try:
                return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table'"
                                    " AND name='_migrations'").fetchone() is not None
            finally:
                conn.close()

        try:
            return _with_retry(probe)
        except sqlite3.DatabaseError as e:
            raise _db_error(self.db_path, e) from e

    # -- versions ---------------------------------------------------------------------------
    def save_version(
        self, kind: str, name: str, content: dict[str, Any], artifact: Path | None = None
    ) -> tuple[Version, bool]:
        """Record ``content`` as the next version of kind/name unless it equals the latest.

        ``artifact`` is a folder from :meth:`staging_dir`; it is renamed into
        ``artifact_dir(kind, name, version)`` in the same transaction. Returns (version, created).
        """
        check_name(name)
        h = content_hash(content)
        moved: Path | None = None
        try:
            with self.db(write=True) as conn:
                row = conn.execute(
                    "SELECT * FROM versions WHERE kind=? AND name=? ORDER BY version DESC LIMIT 1",
                    (kind, name),
                ).fetchone()
                if row is not None and row["hash"] == h:
                    if artifact is not None:
                        shutil.rmtree(artifact, ignore_errors=True)
                    same = self._same_version(conn, row, content)
                    _tag_run_version(conn, same, "unchanged")
                    return same, False
                number = (row["version"] + 1) if row else 1
                if artifact is not None:
                    # A folder at the next number that no version row owns (a crash between rename
                    # and commit, a database restored from an older backup) is never deleted:
                    # the new version takes the next free number instead.
                    while self.artifact_dir(kind, name, number).exists():
                        number += 1
                now = time.time()
                conn.execute(
                    "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, name, number, h, json.dumps(content, default=str), now),
                )
                if artifact is not None:
                    dest = self.artifact_dir(kind, name, number)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(artifact, dest)
                    moved = dest
                made = Version(kind, name, number, h, content, now)
                _tag_run_version(conn, made, "created")
                return made, True
        except BaseException:
            if moved is not None and artifact is not None and not artifact.exists():
                os.replace(moved, artifact)  # not committed: no folder without its version row
            raise

    def _same_version(self, conn: sqlite3.Connection, row: sqlite3.Row, content: dict[str, Any]) -> Version:
        """The latest version, whose hash equals ``content``'s; a stored copy that no longer
        parses is rewritten from ``content`` (same hash, so the very same version)."""
        try:
            return self._version(conn, row)
        except CorruptVersion:
            conn.execute("UPDATE versions SET content=? WHERE kind=? AND name=? AND version=?",
                         (json.dumps(content, default=str), row["kind"], row["name"], row["version"]))
            return self._version(conn, conn.execute(
                "SELECT * FROM versions WHERE kind=? AND name=? AND version=?",
                (row["kind"], row["name"], row["version"])).fetchone())

    def _version(self, conn: sqlite3.Connection, row: sqlite3.Row) -> Version:
        aliases = tuple(
            r[0]
            for r in conn.execute(
                "SELECT alias FROM aliases WHERE kind=? AND name=? AND version=? ORDER BY alias",
                (row["kind"], row["name"], row["version"]),
            )
        )
        try:
            content = json.loads(row["content"])
        except (TypeError, ValueError) as e:
            ref = f"{row['name']}@{row['version']}"
            raise CorruptVersion(
                f"stored {row['kind']} {ref} is corrupt in {self.db_path} (its content is not valid "
                f"JSON: {e}); save {row['name']} again to make a new version, or restore cellops.db "
                "from a backup", row["kind"], ref) from None
        return Version(
            row["kind"], row["name"], row["version"], row["hash"], content, row["created_at"], aliases,
        )

    def resolve(self, kind: str, ref: str) -> Version:
        """Resolve 'NAME', 'NAME@3', 'NAME@prod' or 'NAME@<hash prefix>' to a Version.

        Inside a pipeline run (CELLOPS_PIPELINE_RUN) the version is tagged with the run's id, so
        its record names what it resolved; outside one, resolving writes nothing."""
        v = self._resolve(kind, ref)
        if os.environ.get("CELLOPS_PIPELINE_RUN"):
            with self.db(write=True) as conn:
                _tag_run_version(conn, v, "resolved")
        return v

    def _resolve(self, kind: str, ref: str) -> Version:
        name, spec = split_ref(ref)
        with self.db() as conn:
            rows = conn.execute(
                "SELECT * FROM versions WHERE kind=? AND name=? ORDER BY version", (kind, name)
            ).fetchall()
            if not rows:
                names = [r[0] for r in conn.execute(
                    "SELECT DISTINCT name FROM versions WHERE kind=? ORDER BY name", (kind,))]
                raise NotFoundError(
                    f"no {kind} named '{name}'; available: {', '.join(names) or '(none yet)'}"
                )
            if spec is None or spec == "latest":
                return self._version(conn, rows[-1])
            if spec.isdigit():
                for r in rows:
                    if r["version"] == int(spec):
                        return self._version(conn, r)
            alias = conn.execute(
                "SELECT version FROM aliases WHERE kind=? AND name=? AND alias=?",
                (kind, name, spec),
            ).fetchone()
            if alias is not None:
                return self._version(conn, next(r for r in rows if r["version"] == alias[0]))
            if len(spec) >= 4 and re.fullmatch(r"[0-9a-f]+", spec):
                hits = [r for r in rows if r["hash"].startswith(spec)]
                if len(hits) == 1:
                    return self._version(conn, hits[0])
            have = ", ".join(str(r["version"]) for r in rows)
            raise NotFoundError(
                f"{kind} '{name}' has no version, alias or hash '{spec}'; versions: {have}"
            )

    def list_versions(self, kind: str, name: str | None = None) -> list[Version]:
        q, args = "SELECT * FROM versions WHERE kind=?", [kind]
        if name is not None:
            q, args = q + " AND name=?", [kind, name]
        with self.db() as conn:
            return [self._version(conn, r) for r in conn.execute(q + " ORDER BY name, version", args)]

    def names(self, kind: str) -> list[str]:
        with self.db() as conn:
            return [r[0] for r in conn.execute(
                "SELECT DISTINCT name FROM versions WHERE kind=? ORDER BY name", (kind,))]

    def set_alias(self, kind: str, ref: str, alias: str) -> Version:
        if not NAME_RE.match(alias) or alias.isdigit() or alias == "latest":
            raise InvalidInputError(f"invalid alias {alias!r}: use a word such as prod or staging")
        v = self.resolve(kind, ref)
        with self.db(write=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO aliases VALUES (?, ?, ?, ?)", (kind, v.name, alias, v.version)
            )
        return self.resolve(kind, f"{v.name}@{v.version}")

    # -- runs -------------------------------------------------------------------------------
    def record_run(
        self, kind: str, record: dict[str, Any], name: str | None = None,
        version: int | None = None, status: str = "ok", run_id: str | None = None,
    ) -> str:
        from .records import environment, notebook_context

        run_id = run_id or uuid.uuid4().hex[:12]
        if os.environ.get("CELLOPS_PIPELINE_RUN"):  # lets a pipeline run collect what it touched
            record = {**record, "pipeline_run": os.environ["CELLOPS_PIPELINE_RUN"]}
        # every record says where it ran and, from a notebook, which notebook and cell
        nb = notebook_context()
        record = {"env": environment().to_dict(), **({"notebook": nb.to_dict()} if nb else {}), **record}
        with self.db(write=True) as conn:
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, name, version, status, time.time(), json.dumps(record, default=str)),
            )
        return run_id

    def update_run(self, run_id: str, status: str | None = None, **record_updates: Any) -> None:
        with self.db(write=True) as conn:
            row = conn.execute("SELECT record, status FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no run '{run_id}'")
            record = json.loads(row["record"]) | record_updates
            conn.execute(
                "UPDATE runs SET record=?, status=? WHERE id=?",
                (json.dumps(record, default=str), status or row["status"], run_id),
            )

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run by id or unique id prefix, as a dict with its record."""
        with self.db() as conn:
            rows = conn.execute(
                "SELECT * FROM runs WHERE id LIKE ? LIMIT 2", (run_id.replace("%", "") + "%",)
            ).fetchall()
        if len(rows) != 1:
            what = "no run" if not rows else "more than one run starts with"
            raise NotFoundError(f"{what} '{run_id}'; `cellops runs` lists them")
        return _run_dict(rows[0])

    def list_runs(
        self, kind: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM runs WHERE 1=1", []
        if kind:
            q, args = q + " AND kind=?", [*args, kind]
        if name:
            q, args = q + " AND name=?", [*args, name]
        with self.db() as conn:
            rows = conn.execute(q + " ORDER BY created_at DESC LIMIT ?", [*args, limit]).fetchall()
        return [_run_dict(r) for r in rows]

    @contextmanager
    def heartbeat(self, run_id: str) -> Iterator[None]:
        """While the block runs, run ``run_id`` names this process (pid, host) as its owner and
        beats every HEARTBEAT_S; readers show it ``dead`` once the owner is gone or silent."""
        beat = "UPDATE runs SET record=json_set(record, '$.heartbeat_at', ?) WHERE id=? AND status='running'"
        with self.db(write=True) as conn:
            conn.execute("UPDATE runs SET record=json_set(record, '$.owner', json(?), '$.heartbeat_at', ?)"
                         " WHERE id=?", (json.dumps({"pid": os.getpid(), "host": HOST}), time.time(), run_id))
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(HEARTBEAT_S):
                try:
                    with self.db(write=True) as conn:
                        conn.execute(beat, (time.time(), run_id))
                except (WorkspaceError, sqlite3.Error):
                    continue  # a missed beat is harmless; STALE_S spans many of them

        thread = threading.Thread(target=loop, name=f"cellops-heartbeat-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # -- small key/value state (active guard policy, ...) -------------------------------------
    def get_state(self, key: str, default: Any = None) -> Any:
        with self.db() as conn:
            row = conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_state(self, key: str, value: Any) -> None:
        with self.db(write=True) as conn:
            if value is None:
                conn.execute("DELETE FROM state WHERE key=?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, json.dumps(value)))


_writers: dict[Path, tuple[sqlite3.Connection, threading.Lock]] = {}
_writers_lock = threading.Lock()


def _writer(ws: Workspace) -> tuple[sqlite3.Connection, threading.Lock]:
    """The long-lived connection of ``ws`` (the two most recent workspaces keep theirs open)."""
    with _writers_lock:
        item = _writers.pop(ws.db_path, None)
        if item is None:
            conn = ws._connect(shared=True)
            conn.execute("PRAGMA synchronous=NORMAL")
            item = (conn, threading.Lock())
        _writers[ws.db_path] = item  # most recent last
        while len(_writers) > 2:
            old_conn, old_lock = _writers.pop(next(iter(_writers)))
            with old_lock:
                old_conn.close()
    return item


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    record = json.loads(row["record"])
    return {
        "id": row["id"], "kind": row["kind"], "name": row["name"], "version": row["version"],
        "status": run_status(row["status"], record), "created_at": row["created_at"],
        "record": record,
    }


def workspace_path(start: str | os.PathLike[str] | None = None) -> Path:
    """CELLOPS_HOME if set, else ``.cellops`` in ``start`` (default: the current directory)."""
    env = os.environ.get("CELLOPS_HOME")
    if env:
        return Path(env).expanduser()
    return Path(start or os.getcwd()) / ".cellops"


_open: dict[Path, Workspace] = {}


def get_workspace(path: str | os.PathLike[str] | None = None) -> Workspace:
    """The workspace for ``path`` (a .cellops folder) or the default one; cached per path."""
    p = (Path(path) if path is not None else workspace_path()).expanduser().resolve()
    ws = _open.get(p)
    if ws is None:
        ws = _open[p] = Workspace(p)
    return ws
