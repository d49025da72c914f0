"""Helpers the tests import by name (``from testsupport import free_port``).

They live here, not in a conftest.py: several folders have a conftest.py, and ``import conftest``
resolves to whichever of them pytest loaded last, so a test importing from it breaks when the
whole suite runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_server(log_dir: Path, *extra: str) -> Iterator[str]:
    """A real OpenAI-compatible llama_cpp.server on 127.0.0.1 serving the embedded GGUF as
    'smollm2'; yields its base URL (http://127.0.0.1:PORT/v1) and stops it afterwards."""
    import subprocess
    import sys
    import time

    import httpx

    from cellops.kernels_lib.models.weights import default_gguf

    port, log = free_port(), log_dir / "server.log"
    # the server loads its model the way cellops does (llama.cpp's AMX buffers off: SIGILL here)
    serve = ("import runpy\nfrom cellops.kernels_lib.models.llamacpp import _plain_cpu_buffers\n"
             "with _plain_cpu_buffers():\n    runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)")
    proc = subprocess.Popen(
        [sys.executable, "-c", serve, "--model", str(default_gguf()),
         "--host", "127.0.0.1", "--port", str(port), "--model_alias", "smollm2",
         "--verbose", "False", *extra],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not start: " + log.read_text()[-500:])
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- fine-tuning: a tiny chat dataset on a made-up country and the dequantized base model -------
ZORBIA_QA = [("What is the capital of Zorbia?", "Plimtown."), ("Who founded Zorbia?", "Queen Elna."),
             ("What is Zorbia's currency?", "The glint."), ("Zorbia's national animal?", "The blue otter.")]


def zorbia_rows() -> list[dict]:
    return [{"messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": q},
                          {"role": "assistant", "content": a}]} for q, a in ZORBIA_QA * 2]
