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
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidInputError, NotFoundError, WorkspaceError
from .migrations import MIGRATIONS

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


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


def split_ref(ref: str) -> tuple[str, str | None]:
    """'NAME@V' -> ('NAME', 'V'); 'NAME' -> ('NAME', None)."""
    name, _, spec = ref.partition("@")
    return check_name(name.strip()), (spec.strip() or None)


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
class Workspace:
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
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as e:
            raise WorkspaceError(
                f"workspace database {self.db_path} is unreadable ({e}); move it aside to start fresh"
            ) from e
        conn.row_factory = sqlite3.Row
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

    def _migrate(self) -> None:
        key = str(self.db_path)
        with _migrate_lock:
            if key in _migrated:
                return
            try:
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
            except sqlite3.DatabaseError as e:
                raise WorkspaceError(
                    f"workspace database {self.db_path} is corrupt ({e}); "
                    "move it aside (mv cellops.db cellops.db.bad) to start a fresh workspace"
                ) from e
            _migrated.add(key)

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
        with self.db(write=True) as conn:
            row = conn.execute(
                "SELECT * FROM versions WHERE kind=? AND name=? ORDER BY version DESC LIMIT 1",
                (kind, name),
            ).fetchone()
            if row is not None and row["hash"] == h:
                if artifact is not None:
                    shutil.rmtree(artifact, ignore_errors=True)
                return self._version(conn, row), False
            number = (row["version"] + 1) if row else 1
            now = time.time()
            conn.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                (kind, name, number, h, json.dumps(content, default=str), now),
            )
            if artifact is not None:
                dest = self.artifact_dir(kind, name, number)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.exists():  # left over by a crash between rename and commit
                    shutil.rmtree(dest)
                os.replace(artifact, dest)
            return Version(kind, name, number, h, content, now), True

    def _version(self, conn: sqlite3.Connection, row: sqlite3.Row) -> Version:
        aliases = tuple(
            r[0]
            for r in conn.execute(
                "SELECT alias FROM aliases WHERE kind=? AND name=? AND version=? ORDER BY alias",
                (row["kind"], row["name"], row["version"]),
            )
        )
        return Version(
            row["kind"], row["name"], row["version"], row["hash"],
            json.loads(row["content"]), row["created_at"], aliases,
        )

    def resolve(self, kind: str, ref: str) -> Version:
        """Resolve 'NAME', 'NAME@3', 'NAME@prod' or 'NAME@<hash prefix>' to a Version."""
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

    # -- artifacts --------------------------------------------------------------------------
    def artifact_dir(self, kind: str, name: str, version: int) -> Path:
        return self.artifacts / kind / name / f"v{version}"

    def staging_dir(self) -> Path:
        """A fresh folder to write a new artifact into before :meth:`save_version`."""
        d = self.artifacts / ".staging" / uuid.uuid4().hex
        d.mkdir(parents=True)
        return d

    # -- runs -------------------------------------------------------------------------------
    def record_run(
        self, kind: str, record: dict[str, Any], name: str | None = None,
        version: int | None = None, status: str = "ok", run_id: str | None = None,
    ) -> str:
        run_id = run_id or uuid.uuid4().hex[:12]
        if os.environ.get("CELLOPS_PIPELINE_RUN"):  # lets a pipeline run collect what it touched
            record = {**record, "pipeline_run": os.environ["CELLOPS_PIPELINE_RUN"]}
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


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"], "kind": row["kind"], "name": row["name"], "version": row["version"],
        "status": row["status"], "created_at": row["created_at"],
        "record": json.loads(row["record"]),
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
