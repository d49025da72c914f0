"""Start and stop a real `cellops serve` (uvicorn subprocess on 127.0.0.1) for the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

TOKEN = "test-token-" + "x" * 24
SHORT = "Answer in one short sentence: {{ question }}"


@dataclass
class Served:
    base: str  # http://127.0.0.1:PORT
    home: Path  # the workspace the server writes to
    proc: subprocess.Popen
    log: Path
    token: str = TOKEN

    @property
    def v1(self) -> str:
        return self.base + "/v1"

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def client(self):  # noqa: ANN201 - openai.OpenAI
        import openai

        return openai.OpenAI(base_url=self.v1, api_key=self.token, max_retries=0, timeout=120)

    def ws(self):  # noqa: ANN201
        from cellops.kernels_lib.workspace import get_workspace

        return get_workspace(self.home)


def cellops_exe() -> list[str]:
    exe = Path(sys.executable).parent / "cellops"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from cellops.cli import main; sys.exit(main())"]


def start_server(home: Path, args: list[str], log: Path, port: int | None = None,
                 wait_s: float = 180, env: dict[str, str] | None = None) -> Served:
    port = port or free_port()
    token_file = home.parent / "token"
    token_file.write_text(TOKEN + "\n")
    env = dict(os.environ, CELLOPS_WANDB="off", HF_HUB_OFFLINE="1", CELLOPS_HOME=str(home), **(env or {}))
    proc = subprocess.Popen(
        [*cellops_exe(), "serve", *args, "--port", str(port), "--token-file", str(token_file)],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"cellops serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return Served(base, home, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    pytest.fail("cellops serve did not start: " + log.read_text()[-2000:])


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def make_workspace(root: Path) -> Path:
    """Two versions of a short-answer prompt (A/B), tiny max_tokens so tests stay cheap."""
    from cellops.kernels_lib import prompts
    from cellops.kernels_lib.workspace import Workspace

    home = root / ".cellops"
    ws = Workspace(home)
    prompts.save("helper", SHORT, params={"max_tokens": 6}, workspace=ws)
    prompts.save("helper", "Reply briefly: {{ question }}", params={"max_tokens": 6}, workspace=ws)
    return home
