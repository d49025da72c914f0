"""A handle on a fine-tuning run, rebuilt from its run folder alone (so it works after a kernel
restart, from the CLI, or from another notebook): status, metrics, the registered model, wait,
stop. Its state comes from the event file and whether the supervisor process is alive.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import JobError
from . import events

TERMINAL = {"done": "done", "error": "failed", "stopped": "stopped"}


def last_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest *complete* checkpoint (trainer_state.json is written last), or None."""
    done = [p for p in ckpt_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def _alive(pid: int, run_dir: Path) -> bool:
    """Is ``pid`` still our supervisor (and not a recycled pid of something else)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return str(run_dir) in cmdline and ") Z " not in stat  # a zombie has finished


def _group_alive(pgid: int) -> bool:
    """Does any live (non-zombie) process remain in the run's process group?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for p in Path("/proc").iterdir():  # killpg(0) also counts zombies: look closer
        if p.name.isdigit():
            try:
                fields = p.joinpath("stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


class Job:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        spec_file = self.run_dir / "run.json"
        if not spec_file.exists():
            raise JobError(f"{self.run_dir} is not a fine-tuning run folder (no run.json)")
        self.spec: dict[str, Any] = json.loads(spec_file.read_text())
        self.name: str = self.spec["name"]
        self.run_id: str = self.spec["run_id"]
        self._popen: Any = None  # set by launch() in the process that started it (reaps it)

    # -- state ------------------------------------------------------------------------------
    @property
    def events_path(self) -> Path:
        return self.run_dir / "events.jsonl"

    def events(self) -> list[events.Event]:
        return events.read_all(self.events_path)

    def _current(self) -> list[events.Event]:
        evs = self.events()
        idx = max((i for i, e in enumerate(evs) if e["kind"] == "launch"), default=-1)
        return evs[idx + 1:]

    def _pid(self) -> int | None:
        try:
            return int((self.run_dir / "supervisor.pid").read_text())
        except (OSError, ValueError):
            return None

    @property
    def alive(self) -> bool:
        if self._popen is not None:  # we started it: ask the OS directly (also reaps it)
            return self._popen.poll() is None
        pid = self._pid()
        return pid is not None and _alive(pid, self.run_dir)

    @property
    def status(self) -> str:
        """starting | running | done | failed | stopped."""
        cur = self._current()
        for e in reversed(cur):
            if e["kind"] in TERMINAL:
                return TERMINAL[e["kind"]]
        if self.alive:
            return "running" if any(e["kind"] in ("start", "resume") for e in cur) else "starting"
        return "failed"  # gone without a word: killed (SIGKILL, machine reboot)

    @property
    def error(self) -> str | None:
        cur = self._current()
        errs = [e["message"] for e in cur if e["kind"] == "error"]
        if errs:
            return errs[-1]
        if self.status == "failed":
            return (f"run {self.run_id} of {self.name} stopped without finishing (killed?); "
                    f"%finetune resume {self.name} continues from the last checkpoint")
        return None

    @property
    def metrics(self) -> dict[str, Any]:
        m = events.summarize(self.events())
        m["status"] = self.status
        return m

    @property
    def model(self) -> str | None:
        """The registered ``NAME@V`` once the run is done."""
        done = [e for e in self.events() if e["kind"] == "done"]
        return done[-1].get("model") if done else None

    @property
    def plan(self) -> dict[str, Any]:
        return self.spec["plan"]

    @property
    def samples(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["kind"] == "sample"]

    # -- control ----------------------------------------------------------------------------
    def wait(self, timeout: float | None = None, poll_s: float = 0.5,
             on_events: Callable[[list[events.Event]], None] | None = None,
             raise_on_error: bool = True) -> Job:
        """Block until the run ends; ``on_events`` gets each batch of new events."""
        tail = events.Tail(self.events_path)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            new = tail.read()
            if new and on_events is not None:
                on_events(new)
            status = self.status
            if status in ("done", "failed", "stopped"):
                rest = tail.read()
                if rest and on_events is not None:
                    on_events(rest)
                break
            if deadline is not None and time.monotonic() > deadline:
                raise JobError(f"run {self.run_id} of {self.name} is still {status} after {timeout}s")
            time.sleep(poll_s)
        if self._popen is not None:
            self._popen.wait()
        if raise_on_error and status == "failed":
            raise JobError(f"fine-tune {self.name} failed: {self.error}")
        return self

    def stop(self, timeout: float = 30.0) -> str:
        """Stop the run (SIGTERM to its process group, then SIGKILL). Checkpoints stay."""
        pid = self._pid()
        if pid is None or not self.alive:
            return self.status
        (self.run_dir / "stop").touch()
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return self.status
        # Wait for the whole process group (launcher, ranks), not just the supervisor: a rank
        # still flushing after SIGTERM would otherwise outlive a "stopped" run.
        deadline = time.monotonic() + timeout
        while _group_alive(pid) and time.monotonic() < deadline:
            if self._popen is not None:
                self._popen.poll()  # reap our child so it does not linger as a zombie
            time.sleep(0.2)
        if _group_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.status != "stopped":
                events.append(self.events_path, "stopped", forced=True)
        if self._popen is not None:
            self._popen.wait()
        return self.status

    # -- display ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<finetune {self.name} run {self.run_id}: {self.status}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .view import summary_html, summary_text

        return {"text/plain": summary_text(self), "text/html": summary_html(self)}
