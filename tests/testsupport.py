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


def killed_run(ws, data: Path, name: str = "zr", hostfile: Path | None = None, launched_here: bool = False):
    """A fine-tune as a SIGKILL mid-run leaves it (run.json from the real ``prepare``, a launch
    event, a checkpoint, no live supervisor), without training: what ``resume`` starts from.
    ``launched_here``: this user's launch consent is recorded (as ``launch`` does); without it the
    run is like one that came in a cloned workspace. Returns its Job."""
    import json
    import uuid

    from cellops.kernels_lib.train import events
    from cellops.kernels_lib.train.config import FinetuneConfig
    from cellops.kernels_lib.train.job import Job
    from cellops.kernels_lib.train.launch import RUNS, runs_dir
    from cellops.kernels_lib.train.prepare import prepare
    from cellops.kernels_lib.train.resume import record_consent

    cfg = FinetuneConfig(name=name, data=str(data), max_steps=4, save_every=2, eval_split=0, samples=0,
                         batch=1, max_len=48, hostfile=str(hostfile) if hostfile else None)
    run_id = uuid.uuid4().hex[:12]
    run_dir = runs_dir(ws, name) / run_id
    run_dir.mkdir(parents=True)
    spec = prepare(cfg, ws, run_dir, None) | {"run_id": run_id, "wandb": False, "wandb_id": f"ft-{run_id}"}
    (run_dir / "run.json").write_text(json.dumps(spec, indent=1))
    ws.record_run(RUNS, {"config": spec["config"], "run_dir": str(run_dir)}, name=name, status="running",
                  run_id=run_id)
    events.append(run_dir / "events.jsonl", "launch", resume=False, port=0, cmd=[])
    ckpt = run_dir / "checkpoints" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    if launched_here:
        record_consent(ws, run_id, cfg)
    return Job(run_dir)


def no_node_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ssh client first on PATH that reaches no host, so a check that gets past consent stops at
    reachability and never starts a launcher (test_finetune_multinode.py runs real sshds)."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text('#!/bin/sh\necho "ssh: connect to host $5 port 22: Connection refused" >&2\nexit 255\n')
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
