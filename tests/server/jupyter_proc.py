"""Start and stop a real `jupyter server` / `jupyter lab` subprocess for the server and UI tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

TOKEN = "cellops-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    root: Path
    token: str
    proc: subprocess.Popen
    log: Path

    def get(self, endpoint: str, token: str | None = TOKEN, **params: str) -> httpx.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.get(f"{self.url}/cellops/api/{endpoint}", params=params, headers=headers, timeout=30)


def start_jupyter(app: str, root: Path, tmp: Path, extra: list[str] | None = None,
                  env: dict[str, str] | None = None) -> Server:
    """Start ``jupyter <app>`` and wait until its REST API answers (or fail with its log)."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
    full_env |= {"JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "CELLOPS_WANDB": "off",
                 "JUPYTER_CONFIG_DIR": str(tmp / "config"), "PYTHONUNBUFFERED": "1"}
    full_env |= env or {}
    log = tmp / f"jupyter-{app}.log"
    cmd = [sys.executable, "-m", "jupyter", app, "--no-browser", "--allow-root",
           "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
           "--ServerApp.jpserver_extensions={'cellops': True}", *(extra or [])]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env,
                                cwd=root, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", root, TOKEN, proc, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter {app} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/api/status", headers={"Authorization": f"token {TOKEN}"},
                         timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_jupyter(server)
    raise RuntimeError(f"jupyter {app} did not answer in 120 s:\n{log.read_text()[-3000:]}")


def stop_jupyter(server: Server) -> None:
    """SIGTERM (the server shuts its kernels down), then SIGKILL the session if it lingers."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(server.proc.pid, signal.SIGKILL)  # the session we created: kernels included
    except ProcessLookupError:
        pass
    server.proc.wait(10)
