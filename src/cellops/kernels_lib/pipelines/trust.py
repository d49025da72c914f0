"""Consent for what a workspace's schedules run: notebooks, pipelines and ``on_failure`` commands.

A ``.cellops/`` folder may come from a cloned repository or a shared drive; under ``cellops
scheduler`` its schedules would run their author's shell commands. A schedule added here (by
``schedules.add``) is trusted at once: a digest of its spec and the workspace's real path goes
into ``trusted-schedules.json`` in ``config_dir()`` (``~/.config/cellops``), a per-user file outside
every workspace, so a clone does not carry it. The scheduler builds only trusted rows, and at
start refuses a workspace holding others, naming them and ``cellops scheduler --trust``; the
Airflow export (whose DAGs run the same commands) refuses them too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import JobError, WorkspaceError


def config_dir() -> Path:
    """The user's cellops config folder: ``CELLOPS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/cellops``
    (read at each call, so tests and users can move it)."""
    if os.environ.get("CELLOPS_CONFIG_DIR"):
        return Path(os.environ["CELLOPS_CONFIG_DIR"])
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "cellops"


def _file() -> Path:
    return config_dir() / "trusted-schedules.json"


def digest(ws_root: Path, name: str, spec: dict[str, Any]) -> str:
    """What is trusted: this exact spec under this name in this workspace (an edit needs consent again)."""
    key = json.dumps([str(Path(ws_root).resolve()), name, spec], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


def trusted() -> set[str]:
    path = _file()
    if not path.exists():
        return set()
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(value, list):
            raise ValueError("not a list")
    except ValueError as e:
        raise WorkspaceError(f"{path} is damaged ({e}); delete it and start `cellops scheduler --trust` "
                             "in each workspace whose schedules you trust") from None
    return {str(d) for d in value}


def trust(ws_root: Path, schedules: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Record ``(name, spec)`` pairs of ``ws_root`` as trusted by this user."""
    import fcntl

    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_suffix(".lock"), "a") as lock:  # two adds at once must not lose one
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = trusted() | {digest(ws_root, name, spec) for name, spec in schedules}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(have), indent=0), encoding="utf-8")
        tmp.replace(path)


def is_trusted(ws_root: Path, name: str, spec: dict[str, Any], known: set[str] | None = None) -> bool:
    return digest(ws_root, name, spec) in (trusted() if known is None else known)


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
