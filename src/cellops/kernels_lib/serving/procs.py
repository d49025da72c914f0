"""Detached servers (``%serve start|stop|list|logs``): the same ``cellops serve`` in its own session.

Like a fine-tuning run, a server started from a cell is a separate process (new session, stdin
closed), so a kernel restart does not stop it; everything about it lives in
``<workspace>/serve/NAME/``: ``server.json`` (config, port, pid, start time), ``server.log`` and
the token. ``python -m cellops.kernels_lib.serving.procs FOLDER`` is that process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import html
from ..errors import JobError, NotFoundError
from ..workspace import Workspace, get_workspace
from . import auth, records
from .config import ServeConfig


def folder(ws: Workspace, name: str) -> Path:
    return ws.root / "serve" / name


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _alive(pid: int, where: Path) -> bool:
    """Is ``pid`` still our server (not a recycled pid, not a zombie)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return str(where) in cmdline and ") Z " not in stat


@dataclass
class Server:
    name: str
    dir: Path
    spec: dict[str, Any]

    @property
    def pid(self) -> int:
        return int(self.spec["pid"])

    @property
    def alive(self) -> bool:
        return _alive(self.pid, self.dir)

    @property
    def url(self) -> str:
        return f"http://{self.spec['host']}:{self.spec['port']}"

    def healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _load(d: Path) -> Server | None:
    try:
        return Server(d.name, d, json.loads((d / "server.json").read_text()))
    except (OSError, ValueError):
        return None


def get(name: str, workspace: Workspace | None = None) -> Server:
    ws = workspace or get_workspace()
    s = _load(folder(ws, name))
    if s is None:
        names = [x.name for x in servers(ws)]
        raise NotFoundError(f"no server named '{name}'; servers: {', '.join(names) or '(none yet)'}")
    return s


def servers(workspace: Workspace | None = None) -> list[Server]:
    ws = workspace or get_workspace()
    root = ws.root / "serve"
    found = [_load(d) for d in sorted(root.iterdir())] if root.is_dir() else []
    return [s for s in found if s is not None]


def start(cfg: ServeConfig, workspace: Workspace | None = None, wait_s: float = 180.0) -> Started:
    """Start ``cellops serve`` detached; returns once it answers /healthz (or raises with its log)."""
    ws = workspace or get_workspace()
    name = cfg.app_name
    old = _load(folder(ws, name))
    if old is not None and old.alive:
        raise JobError(f"server {name} is already running (pid {old.pid}, {old.url}); %serve stop {name} first")
    cfg = replace(cfg, workspace=str(ws.root), port=cfg.port or _free_port(cfg.host))
    d = folder(ws, name)
    d.mkdir(parents=True, exist_ok=True)
    token, created = auth.load_token(ws, name, cfg.token_file)  # fails here, not in the child
    (d / "config.json").write_text(cfg.to_json())  # what the child reads (before it starts)
    log = open(d / "server.log", "ab")
    log.write(f"\n=== {time.ctime()}: serve {cfg.to_json()}\n".encode())
    log.flush()
    # PYTHONSAFEPATH: ``python -m`` would put its working directory (the workspace) first on
    # sys.path, so a cloned .cellops/ holding json.py or cellops/ would run in the server
    env = dict(os.environ, CELLOPS_HOME=str(ws.root), PYTHONUNBUFFERED="1", PYTHONSAFEPATH="1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    proc = subprocess.Popen([sys.executable, "-m", "cellops.kernels_lib.serving.procs", str(d)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True, cwd=ws.root)
    log.close()
    spec = {"config": json.loads(cfg.to_json()), "pid": proc.pid, "host": cfg.host, "port": cfg.port,
            "started_at": time.time(), "target": cfg.target, "b": cfg.b}
    tmp = d / "server.json.tmp"
    tmp.write_text(json.dumps(spec, indent=1))
    os.replace(tmp, d / "server.json")
    server = Server(name, d, spec)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise JobError(f"server {name} exited with code {proc.returncode}: {_tail(d, 5) or 'no output'}")
        if server.healthy():
            return Started(server, token if created else None)
        time.sleep(0.3)
    stop(name, ws)
    raise JobError(f"server {name} did not answer /healthz within {wait_s:.0f}s; %serve logs {name}")


def stop(name: str, workspace: Workspace | None = None, timeout: float = 15.0) -> Server:
    s = get(name, workspace)
    if not s.alive:
        return s
    try:
        os.killpg(s.pid, signal.SIGTERM)  # uvicorn finishes in-flight requests, then exits
    except ProcessLookupError:
        return s
    deadline = time.monotonic() + timeout
    while s.alive and time.monotonic() < deadline:
        _reap(s.pid)
        time.sleep(0.2)
    if s.alive:
        os.killpg(s.pid, signal.SIGKILL)
    _reap(s.pid)
    return s


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # our own child (started in this process): no zombie
    except ChildProcessError:
        pass


def _tail(d: Path, lines: int) -> str:
    try:
        return "\n".join((d / "server.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def logs(name: str, lines: int = 40, workspace: Workspace | None = None) -> str:
    s = get(name, workspace)
    return _tail(s.dir, lines) or "(no output yet)"


@dataclass
class Started:
    server: Server
    new_token: str | None  # shown once, when it was generated

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        s = self.server
        lines = [f"serving {s.name} at {s.url}/v1 (pid {s.pid}); chat page: {s.url}/",
                 f"stop it with %serve stop {s.name}"]
        if self.new_token:
            lines.insert(1, f"API token (shown once, kept in {s.dir / 'token'}): {self.new_token}")
        text = "\n".join(lines)
        return {"text/plain": text, "text/html": html.box("serve", html.pre(text))}


class ServerList(list):
    COLS = ("name", "status", "url", "target", "pid", "uptime", "requests")

    def __init__(self, items: list[Server], ws: Workspace) -> None:
        super().__init__(items)
        self.ws = ws

    def rows(self) -> list[tuple[Any, ...]]:
        ws = self.ws
        out = []
        for s in self:
            alive = s.alive
            up = _duration(time.time() - s.spec["started_at"]) if alive else "-"
            target = s.spec["target"] + (f" | B: {s.spec['b']}" if s.spec.get("b") else "")
            out.append((s.name, "running" if alive else "stopped", s.url + "/v1", target, s.pid, up,
                        records.count(ws, s.name)))
        return out

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        if not self:
            return {"text/plain": "(no servers yet)", "text/html": "<i>no servers yet</i>"}
        rows = self.rows()
        return {"text/plain": html.text_table(self.COLS, rows),
                "text/html": html.box("servers", html.table(self.COLS, rows))}


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def listing(workspace: Workspace | None = None) -> ServerList:
    ws = workspace or get_workspace()
    return ServerList(servers(ws), ws)


def _main(d: Path) -> None:
    from .server import serve

    serve(ServeConfig.from_json((d / "config.json").read_text()))


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
