"""The supervisor: a small detached process that runs the ``deepspeed`` launcher and records how
it ended. It outlives the kernel (a restart does not kill training), turns a dying launcher into an
``error`` event with a one-line reason, and marks the workspace run as done/failed/stopped.

``python -m cellops.kernels_lib.train.supervise RUN_DIR``; the command to run is in launch.json.
It imports no torch: it only waits.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..artifacts import write_atomic
from . import events, shm

TAIL_BYTES = 64 * 1024


def diagnose(log: Path, code: int) -> str:
    """One line saying why the launcher died, from the end of its log."""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            tail = f.read().decode(errors="replace")
    except OSError:
        tail = ""
    if "Address already in use" in tail or "EADDRINUSE" in tail:
        return "the rendezvous port was taken by another process; run again with --port 0"
    if re.search(r"out of memory|OutOfMemoryError|Killed|exitcode\s*:?\s*-9|code -9", tail):
        return ("a training process ran out of memory (or was killed); use --method lora, a smaller "
                "--batch/--max-len, or more --procs with --zero 2/3")
    errors = re.findall(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)\b:?.*)$", tail, flags=re.M)
    if errors:
        return errors[-1].strip()[:400] + f" (see {log})"
    return f"the deepspeed launcher exited with code {code}; see {log}"


def supervise(run_dir: Path) -> int:
    spec = json.loads((run_dir / "launch.json").read_text())
    log = run_dir / "launcher.log"
    ev_path = run_dir / "events.jsonl"
    with open(log, "ab") as out:
        out.write(f"\n=== {time.ctime()}: {' '.join(spec['cmd'])}\n".encode())
        out.flush()
        proc = subprocess.Popen(spec["cmd"], stdout=out, stderr=subprocess.STDOUT, cwd=run_dir)

        def forward(signum: int, _frame: object) -> None:
            proc.send_signal(signum)  # the launcher passes it on to every rank

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = proc.wait()
    if spec.get("port"):
        shm.release_port(spec["port"])  # DeepSpeed's segments of ranks that died before training began
    since_launch = _since_last_launch(events.read_all(ev_path))
    kinds = {e["kind"] for e in since_launch}
    status = "done"
    if (run_dir / "stop").exists():
        status = "stopped"
        events.append(ev_path, "stopped", exit_code=code)
    elif "done" not in kinds:
        status = "failed"
        reason = diagnose(log, code)
        worker_err = [e["message"] for e in since_launch if e["kind"] == "error"]
        events.append(ev_path, "error", message=worker_err[-1] if worker_err else reason, exit_code=code,
                      source="supervisor")
    write_atomic(run_dir / "exit.json", json.dumps({"code": code, "status": status, "t": time.time()}))
    _record(spec, status)
    return 0


def _since_last_launch(evs: list[events.Event]) -> list[events.Event]:
    idx = max((i for i, e in enumerate(evs) if e["kind"] == "launch"), default=-1)
    return evs[idx + 1:]


def _record(spec: dict[str, str], status: str) -> None:
    """Workspace run status (done is recorded by rank 0 together with the model version)."""
    if status == "done":
        return
    try:
        from ..workspace import get_workspace

        get_workspace(spec["workspace"]).update_run(spec["run_id"], status=status)
    except Exception as e:  # the event file already tells the truth
        print(f"cellops supervisor: could not update the workspace run: {e}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1])))
