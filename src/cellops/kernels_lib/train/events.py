"""The run's event file: one JSON object per line, appended by the supervisor and rank 0.

It is the only channel between a training job and whoever watches it (widget, ``Job.wait``,
``%finetune status``, a kernel that re-attaches after a restart): plain appends survive crashes
and need no server. Kinds: plan, start, resume, log, eval, checkpoint, sample, done, error, stopped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..jsonl import parse_line

Event = dict[str, Any]


def append(path: Path, kind: str, /, **fields: Any) -> Event:
    """Append one event (a single write of one line, so concurrent readers never see half)."""
    ev = {"t": time.time(), "kind": kind, **fields}
    line = json.dumps(ev, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return ev


class Tail:
    """Incremental reader: ``read()`` returns the events appended since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

    def read(self) -> list[Event]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next read
        out: list[Event] = []
        for raw in lines:
            if raw.strip():
                try:
                    out.append(parse_line(raw))
                except ValueError:
                    continue  # a line torn by a crash mid-write: skip it, keep the rest
        return out


def read_all(path: Path) -> list[Event]:
    return Tail(path).read()


def summarize(events: list[Event]) -> dict[str, Any]:
    """Fold events into the current metrics: step, loss, eval loss before/after, tokens/s, ETA."""
    m: dict[str, Any] = {"step": 0, "max_steps": None, "loss": None, "eval_loss_before": None,
                         "eval_loss_after": None, "eval_margin_before": None, "eval_margin_after": None,
                         "tokens_per_s": None, "eta_s": None, "losses": [], "eval_losses": []}
    for ev in events:
        kind = ev.get("kind")
        if kind in ("start", "resume"):
            m["max_steps"] = ev.get("max_steps", m["max_steps"])
        elif kind == "log":
            m["step"] = ev.get("step", m["step"])
            for k in ("loss", "tokens_per_s", "eta_s", "tokens_seen", "lr", "elapsed_s"):
                if ev.get(k) is not None:
                    m[k] = ev[k]
            if ev.get("loss") is not None:
                # steps redone after a resume replace the ones logged before the kill
                m["losses"] = [p for p in m["losses"] if p[0] < ev["step"]] + [(ev["step"], ev["loss"])]
        elif kind == "eval":
            m["eval_losses"].append((ev.get("step", 0), ev.get("eval_loss")))
            if ev.get("phase") == "before" and m["eval_loss_before"] is None:
                m["eval_loss_before"] = ev.get("eval_loss")
                m["eval_margin_before"] = ev.get("margin")  # preference runs: the base model's
            elif ev.get("phase") == "after":
                m["eval_loss_after"] = ev.get("eval_loss")
                m["eval_margin_after"] = ev.get("margin")
        elif kind == "done":
            for k, v in ev.items():
                if k not in ("t", "kind"):
                    m[k] = v
    return m
