"""Fine-tuning job status and pipeline schedules, read from what those areas leave behind.

A fine-tune run is a ``runs`` row of kind "finetune" whose record points at a run folder with an
append-only ``events.jsonl`` (see kernels_lib/train/events.py). The server only reads that file,
so a job started by a kernel that has since died still shows its last state. Both the train and
the pipelines areas may be absent from an install: every lookup here degrades to "nothing".
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

from ..kernels_lib.errors import CellopsError, WorkspaceError
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
    """The train area's own fold of events when it is installed, else the few fields we need."""
    try:
        from ..kernels_lib.train.events import summarize
    except ImportError:
        summarize = None
    if summarize is not None:
        try:
            return dict(summarize(events))
        except Exception:  # noqa: BLE001 - a format change there must not break the panel
            pass
    m: dict[str, Any] = {"step": 0, "max_steps": None, "loss": None, "losses": []}
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
    rec = run.get("record") or {}
    view = {
        "id": run["id"], "name": run.get("name"), "version": run.get("version"),
        "created_at": run.get("created_at"), "status": status,
        "running": last is None and status not in ("error", "failed", "ok", "done", "stopped"),
        "progress": progress, "step": step, "max_steps": max_steps,
        "loss": summary.get("loss"), "summary": summary, "has_events": path is not None and bool(events),
        # the train area records base_uri at launch and the registered model ref when done
        "base_model": rec.get("base_uri") or rec.get("base_model"),
        "output": rec.get("model") or rec.get("output_model"), "metrics": rec.get("metrics"),
    }
    if with_events_since is not None:
        start = max(with_events_since, 0)
        view["events"] = events[start:start + MAX_EVENTS]
        view["next"] = start + len(view["events"])
    return view


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else {"repr": repr(obj)}


def schedules(ws: Workspace) -> list[dict[str, Any]]:
    """Schedules as the pipelines area lists them; versions of kind "schedule" otherwise."""
    for mod_name in ("cellops.kernels_lib.pipelines.schedules", "cellops.kernels_lib.pipelines"):
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        fn = getattr(mod, "list_schedules", None)
        if callable(fn):
            try:
                items = list(fn(ws))
            except CellopsError:
                raise
            except Exception as e:  # noqa: BLE001 - their store failing must not take the panel down
                raise WorkspaceError(f"schedules cannot be read ({type(e).__name__}: {e})") from e
            out = []
            for s in items:
                d = _as_dict(s)
                if hasattr(s, "paused"):
                    d["paused"] = bool(s.paused)
                out.append(json.loads(json.dumps(d, default=str)))
            return out
    return [{"name": v.name, "version": v.version, "ref": v.ref, **v.content}
            for v in ws.list_versions("schedule")]
