"""Per-user consent for what a workspace cannot grant itself; first of all what its schedules run:
notebooks, pipelines and ``on_failure`` commands.

A ``.cellops/`` folder may come from a cloned repository or a shared drive; under ``cellops
scheduler`` its schedules would run their author's shell commands. A schedule added here (by
``schedules.add``) is trusted at once: a digest of its spec and the workspace's real path goes
into ``trusted-schedules.json`` in ``config_dir()`` (``~/.config/cellops``), a per-user file outside
every workspace, so a clone does not carry it. The scheduler builds only trusted rows, and at
start refuses a workspace holding others, naming them and ``cellops scheduler --trust``; the
Airflow export (whose DAGs run the same commands) refuses them too.

The same per-user files hold the other consents a workspace cannot grant itself: ``kind="runs"``
(fine-tunes launched here, whose hostfile ``%finetune resume`` may then use; train/resume.py) and
the code of the notebooks a schedule runs (``consent_code`` / ``code_consented``: a notebook
that changed since, such as one a ``git pull`` brought, is not run until the user consents again).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import JobError, WorkspaceError


def config_dir() -> Path:
    """The user's cellops config folder: ``CELLOPS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/cellops``
    (read at each call, so tests and users can move it)."""
    if os.environ.get("CELLOPS_CONFIG_DIR"):
        return Path(os.environ["CELLOPS_CONFIG_DIR"])
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "cellops"


def _file(kind: str = "schedules") -> Path:
    return config_dir() / f"trusted-{kind}.json"


def digest(ws_root: Path, name: str, spec: dict[str, Any]) -> str:
    """What is trusted: this exact spec under this name in this workspace (an edit needs consent again)."""
    key = json.dumps([str(Path(ws_root).resolve()), name, spec], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


def _read(kind: str, shape: type) -> Any:
    path = _file(kind)
    if not path.exists():
        return shape()
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(value, shape):
            raise ValueError(f"not a {shape.__name__}")
    except ValueError as e:
        raise WorkspaceError(f"{path} is damaged ({e}); delete it and consent again (`cellops scheduler "
                             "--trust` in each workspace whose schedules you trust)") from None
    return value


def _write(kind: str, shape: type, change: Callable[[Any], Any]) -> None:
    """Read, change and atomically replace one consent file, holding its lock (two adds at once
    must not lose one)."""
    import fcntl

    path = _file(kind)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        value = change(_read(kind, shape))
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value, indent=0, sort_keys=True), encoding="utf-8")
        tmp.replace(path)


def trusted(kind: str = "schedules") -> set[str]:
    return {str(d) for d in _read(kind, list)}


def trust(ws_root: Path, schedules: Iterable[tuple[str, dict[str, Any]]], kind: str = "schedules") -> None:
    """Record ``(name, spec)`` pairs of ``ws_root`` as trusted by this user."""
    new = {digest(ws_root, name, spec) for name, spec in schedules}
    _write(kind, list, lambda have: sorted({str(d) for d in have} | new))


def is_trusted(ws_root: Path, name: str, spec: dict[str, Any], known: set[str] | None = None,
               kind: str = "schedules") -> bool:
    return digest(ws_root, name, spec) in (trusted(kind) if known is None else known)


def refuse_untrusted(ws_root: Path, schedules: Iterable[tuple[str, dict[str, Any]]],
                     consent: str = "start `cellops scheduler --trust`") -> None:
    """JobError (one line, saying how to consent) when any schedule was not added here."""
    known = trusted()
    names = [n for n, spec in schedules if not is_trusted(ws_root, n, spec, known)]
    if names:
        raise JobError(
            f"{len(names)} schedule(s) in {ws_root} were not added by you on this machine "
            f"({', '.join(names)}); they run notebooks and shell commands (on_failure): check them with "
            f"`cellops schedule list`, then {consent} to trust them")


# -- the code a schedule runs -----------------------------------------------------------------
CODE = "code"  # trusted-code.json: {real path of a notebook or pipeline file: digest of its code}


def code_digest(path: Path) -> str | None:
    """sha256 of what running ``path`` executes: a notebook's code cells in order (outputs,
    markdown and metadata change on every save and run nothing), a pipeline file's bytes. None
    when it cannot be read."""
    try:
        raw = Path(path).read_bytes()
        if Path(path).suffix == ".ipynb":
            cells = json.loads(raw).get("cells", [])
            code = [c.get("source", "") for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
            raw = json.dumps(["".join(s) if isinstance(s, list) else s for s in code]).encode()
    except (OSError, ValueError, AttributeError):
        return None
    return hashlib.sha256(raw).hexdigest()


def consent_code(paths: Iterable[Path]) -> None:
    """This user vouches for the code these files hold now (``schedule add``, ``schedule trust``,
    ``scheduler --trust``, or a save from the user's own Jupyter: ``reconsent_saved``)."""
    now = {os.path.realpath(p): code_digest(Path(p)) for p in paths}
    _write(CODE, dict, lambda have: have | {p: d for p, d in now.items() if d is not None})


def changed_code(paths: Iterable[Path]) -> list[Path]:
    """The files whose code is not what this user last vouched for (a ``git pull``, a clone)."""
    known = _read(CODE, dict)
    out = []
    for p in paths:
        now = code_digest(Path(p))
        if now is None or known.get(os.path.realpath(p)) != now:
            out.append(Path(p))
    return out


def require_code(path: Path, expected: str) -> None:
    """JobError unless ``path`` holds the code ``expected`` pins (an exported Airflow DAG pins the
    code of each notebook it runs, so a DAG never runs code nobody exported)."""
    if code_digest(path) != expected:
        raise JobError(f"not run: {path} changed since it was exported to Airflow (its code differs from "
                       "what the DAG pins); review it, then `cellops schedule export --airflow DIR` again")


def reconsent_saved(os_path: str) -> bool:
    """A file saved through this user's Jupyter server: if a schedule runs it (its code was
    vouched for before), the saved code is vouched for too, so editing a scheduled notebook in
    Jupyter needs no extra step. True when it was such a file."""
    real = os.path.realpath(os_path)
    if real not in _read(CODE, dict):
        return False
    consent_code([Path(real)])
    return True
