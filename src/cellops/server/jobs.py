"""Fine-tuning job status and pipeline schedules, read from what those areas leave behind.

A fine-tune run is a ``runs`` row of kind "finetune" whose record points at a run folder with an
append-only ``events.jsonl`` (see kernels_lib/train/events.py). The server only reads that file,
so a job started by a kernel that has since died still shows its last state. Schedules come from
the pipelines area's own listing, so the panel shows what `cellops schedule list` shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..kernels_lib.records import TrainingRecord
from ..kernels_lib.workspace import Workspace

TERMINAL = {"done": "done", "error": "error", "stopped": "stopped"}
MAX_EVENTS = 500  # per response; the panel asks again with ?since= for the rest
_PATH_KEYS = ("events", "events_path", "event_file")
_DIR_KEYS = ("run_dir", "dir", "out_dir", "output_dir")


def events_path(record: dict[str, Any]) -> Path | None:
    """Where the record says its event file is (a file key, or a run folder + events.jsonl)."""
    for k in _PATH_KEYS:
        if isinstance(record.get(k), str):
            return Path(record[k])
    for k in _DIR_KEYS:
        if isinstance(record.get(k), str):
            return Path(record[k]) / "events.jsonl"
    return None


def read_events(path: Path | None) -> list[dict[str, Any]]:
    """All complete events; a torn last line (a writer mid-append) is left for the next read."""
    if path is None:
        return []
    try:
        data = path.read_bytes()
    except OSError:
        return []
    out = []
    for raw in data.split(b"\n")[:-1]:  # the piece after the last newline is unfinished
        if raw.strip():
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            if isinstance(ev, dict):
                out.append(ev)
    return out


def _summarize(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The train area's fold of the events; for a file it cannot fold (a hand-edited or foreign
    event file), the few fields the panel needs, with the reason."""
    from ..kernels_lib.train.events import summarize

    try:
        return dict(summarize(events))
    except (KeyError, TypeError, ValueError) as e:
        m: dict[str, Any] = {"step": 0, "max_steps": None, "loss": None, "losses": [],
                             "error": f"event file not understood ({type(e).__name__}: {e})"}
    for ev in events:
        if ev.get("max_steps") is not None:
            m["max_steps"] = ev["max_steps"]
        if ev.get("kind") == "log":
            m["step"] = ev.get("step", m["step"])
            if ev.get("loss") is not None:
                m["loss"] = ev["loss"]
                m["losses"].append((ev.get("step", 0), ev["loss"]))
    return m


def job_view(run: dict[str, Any], path: Path | None,
             with_events_since: int | None = None) -> dict[str, Any]:
    events = read_events(path)
    summary = _summarize(events)
    last = next((e.get("kind") for e in reversed(events) if e.get("kind") in TERMINAL), None)
    status = TERMINAL[last] if last else run.get("status") or "unknown"
    step, max_steps = summary.get("step") or 0, summary.get("max_steps")
    progress = min(step / max_steps, 1.0) if isinstance(max_steps, int | float) and max_steps else None
    if status == "done":
        progress = 1.0
    rec = TrainingRecord.from_row(run | {"record": run.get("record") or {}})
    view = {
        "id": run["id"], "name": run.get("name"), "version": run.get("version"),
        "created_at": run.get("created_at"), "status": status,
        "running": last is None and status not in ("error", "failed", "ok", "done", "stopped"),
        "progress": progress, "step": step, "max_steps": max_steps,
        "loss": summary.get("loss"), "summary": summary, "has_events": path is not None and bool(events),
        # the train area records base_uri at launch and the registered model ref when done
        "base_model": rec.base_uri or rec.extra.get("base_model"),
        "output": rec.model or rec.extra.get("output_model"), "metrics": dict(rec.metrics) or None,
    }
    if with_events_since is not None:
        start = max(with_events_since, 0)
        view["events"] = events[start:start + MAX_EVENTS]
        view["next"] = start + len(view["events"])
    return view


def schedules(ws: Workspace) -> list[dict[str, Any]]:
    """Schedules from their rows (nothing unpickled); ones an older cellops left in APScheduler's
    pickled table are listed by name, paused, with what to do."""
    from ..kernels_lib.pipelines.schedules import list_schedules

    listed = list_schedules(ws)
    out = [{"name": s.name, "target": s.target, "trigger": s.trigger, "params": s.params,
            "next_run": s.next_run.isoformat() if s.next_run else None, "paused": s.paused,
            "spec": s.spec} for s in listed]
    out += [{"name": name, "target": "", "trigger": "not carried over from an older cellops",
             "params": {}, "next_run": None, "paused": True, "unmoved": True, "note": listed.note()}
            for name in listed.unmoved]
    return json.loads(json.dumps(out, default=str))
