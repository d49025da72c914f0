"""Schedules: cron (or interval) jobs that run notebooks and chains, kept in the workspace DB.

Each schedule is a plain row of the ``schedules`` table: its spec as JSON, the next run time (NULL
while paused) and a revision that every edit bumps. Nothing about a schedule is pickled.
APScheduler's SQLAlchemy job store pickles job state, and unpickling a ``cellops.db`` from a cloned
repository would run whatever code its author put there, so ``cellops scheduler`` (scheduler.py)
builds APScheduler jobs in memory from the rows when it starts, re-reads the rows every ``poll``
seconds to pick up edits from other processes (the CLI, a notebook), and writes each job's next
run time back to its row. Listing reads rows only: it never imports APScheduler.

Schedules saved before migration 41 lived in APScheduler's pickled table; the migration keeps
their names and next run times in ``schedules_unmoved`` (the pickled state is never read), and
listings name them so the user can add them again.

Per schedule: overlap is skipped (max_instances=1, recorded), missed runs after downtime are
run once (coalesced) or recorded as missed (``catch_up=False``), each attempt runs in a child
process with a wall-clock ``timeout`` (killed, recorded), ``retries`` re-run a failed attempt,
and ``on_failure`` is a shell command run after the last failed attempt. Every step lands in
the ``schedule_events`` table (``events()``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import html, trust
from ..errors import CellopsError, InvalidInputError, NotFoundError, WorkspaceError
from ..workspace import Workspace, check_name, get_workspace


@dataclass
class Schedule:
    name: str
    target: str
    trigger: str
    params: dict[str, Any]
    next_run: datetime | None
    spec: dict[str, Any]

    @property
    def paused(self) -> bool:
        return self.next_run is None


@dataclass(frozen=True)
class Row:
    """One ``schedules`` row as the scheduler reads it."""

    name: str
    spec: dict[str, Any]
    next_run: datetime | None
    rev: int


class ScheduleList(list):
    unmoved: tuple[str, ...] = ()  # names left behind in APScheduler's old pickled table

    def _rows(self) -> list[tuple[Any, ...]]:
        return [(s.name, Path(s.target).name, s.trigger, json.dumps(s.params),
                 "paused" if s.paused else s.next_run.strftime("%Y-%m-%d %H:%M:%S"),
                 s.spec.get("timeout") or "", s.spec.get("retries", 0), s.spec.get("on_failure") or "")
                for s in self]

    # on_failure is shown whole: it is what a cloned workspace's author would have you run
    _COLS = ("name", "target", "when", "params", "next run", "timeout", "retries", "on failure")

    def note(self) -> str:
        if not self.unmoved:
            return ""
        return (f"not carried over from an older cellops: {', '.join(self.unmoved)} (their saved "
                "state is a pickle, which cellops never loads); add them again with `cellops "
                "schedule add`, or `cellops schedule remove NAME` to forget one")

    def __str__(self) -> str:
        text = html.text_table(self._COLS, self._rows()) if self else "(no schedules)"
        return text + (f"\n{self.note()}" if self.unmoved else "")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        body = html.table(self._COLS, self._rows())
        if self.unmoved:
            body += f"<div class='muted'>{html.esc(self.note())}</div>"
        return {"text/plain": str(self), "text/html": html.box("schedules", body)}


def trigger_for(cron: str | None, every: float | None) -> Any:
    """A CronTrigger (5-field crontab) or an IntervalTrigger (seconds); InvalidInputError if bad
    or if it would never fire (``0 0 31 2 *``: there is no 31st of February)."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if (cron is None) == (every is None):
        raise InvalidInputError("give exactly one of --cron EXPR or --every SECONDS")
    if every is not None:
        if not isinstance(every, int | float) or every <= 0:
            raise InvalidInputError(f"--every must be a positive number of seconds, got {every}")
        return IntervalTrigger(seconds=every)
    fields = cron.split() if isinstance(cron, str) else []
    if len(fields) != 5:
        raise InvalidInputError(f"bad cron expression '{cron}': use 5 fields (minute hour day month "
                                "weekday), e.g. '0 2 * * *' for 02:00 every day")
    try:
        trig = CronTrigger.from_crontab(cron)
    except ValueError as e:
        raise InvalidInputError(f"bad cron expression '{cron}': {e}; e.g. '*/15 * * * *'") from None
    if first_run(trig) is None:
        raise InvalidInputError(f"cron expression '{cron}' matches no date (such as the 31st of "
                                "February), so it would never run; check its day and month fields")
    return trig


def first_run(trig: Any) -> datetime | None:
    """When ``trig`` fires next from now (None: never)."""
    return trig.get_next_fire_time(None, datetime.now(trig.timezone))


def trigger_of(spec: dict[str, Any]) -> Any:
    return trigger_for(spec.get("cron"), spec.get("every"))


def _validate_target(target: str | Path, params: dict[str, Any]) -> tuple[Path, str, dict[str, Any]]:
    from . import chain, notebook

    p = Path(target).expanduser()
    if p.suffix in (".yaml", ".yml"):
        chain.load_chain(p, params)
        return p.resolve(), "chain", params
    checked = notebook.check_parameters(p, params)
    return notebook.notebook_path(p), "notebook", checked


def add(target: str | Path, *, cron: str | None = None, every: float | None = None,
        params: dict[str, Any] | None = None, name: str | None = None, timeout: float | None = None,
        retries: int = 0, retry_delay: float = 30.0, on_failure: str | None = None,
        catch_up: bool = True, kernel_name: str = "python3",
        workspace: Workspace | None = None) -> Schedule:
    """Schedule a notebook or pipeline file; everything is validated now, not at 2 am."""
    ws = workspace or get_workspace()
    trig = trigger_for(cron, every)
    path, kind, checked = _validate_target(target, dict(params or {}))
    name = check_name(name or path.stem)
    if retries < 0 or retry_delay < 0 or (timeout is not None and timeout <= 0):
        raise InvalidInputError("retries and retry delay must be >= 0, timeout > 0 seconds")
    spec = {"name": name, "target": str(path), "kind": kind, "params": checked, "cron": cron,
            "every": every, "timeout": timeout, "retries": retries, "retry_delay": retry_delay,
            "on_failure": on_failure, "catch_up": catch_up, "kernel": kernel_name,
            "workspace": str(ws.root), "created_at": time.time()}
    nxt = first_run(trig)
    with ws.db(write=True) as conn:
        if conn.execute("SELECT 1 FROM schedules WHERE name=?", (name,)).fetchone():
            raise InvalidInputError(f"a schedule named '{name}' exists; remove it first or pass --name")
        conn.execute("INSERT INTO schedules (name, spec, next_run, rev, created_at) VALUES (?, ?, ?, 1, ?)",
                     (name, json.dumps(spec), nxt.timestamp() if nxt else None, spec["created_at"]))
        conn.execute("DELETE FROM schedules_unmoved WHERE name=?", (name,))
    trust.trust(ws.root, [(name, spec)])  # added here by this user: its scheduler may run it
    trust.consent_code(code_paths(spec))  # ...and the code its notebooks hold now
    return _schedule(name, spec, nxt)


def code_paths(spec: dict[str, Any]) -> list[Path]:
    """The files whose code a firing runs: the target, and a pipeline file's notebook steps."""
    target = Path(spec["target"])
    if spec.get("kind") != "chain":
        return [target]
    from . import chain

    try:
        steps = chain.load_chain(target, spec.get("params") or {}).steps
    except CellopsError:  # unreadable now: the file's own digest no longer matches either
        return [target]
    return [target, *(s.notebook for s in steps.values() if s.notebook is not None)]


def trust_schedule(name: str, workspace: Workspace | None = None) -> Schedule:
    """``cellops schedule trust NAME``: this user vouches for the schedule and the code its files
    hold now (after reviewing a change a ``git pull`` brought, or an edit outside Jupyter)."""
    ws = workspace or get_workspace()
    row = next((r for r in rows(ws) if r.name == name), None)
    if row is None:
        raise NotFoundError(f"no schedule '{name}'; `cellops schedule list` shows them")
    consent(ws.root, [(name, row.spec)])
    return _schedule(name, row.spec, row.next_run)


def consent(ws_root: Path, present: list[tuple[str, dict[str, Any]]]) -> None:
    """This user vouches for these schedules and the code their files hold now (``schedule
    trust``, ``scheduler --trust``, ``schedule export --airflow --trust``)."""
    trust.trust(ws_root, present)
    trust.consent_code(p for _, spec in present for p in code_paths(spec))


def untrusted_code(spec: dict[str, Any], refused: str = "not run") -> str | None:
    """One line (starting ``refused``) when a file the schedule runs changed since this user
    vouched for it, else None."""
    changed = trust.changed_code(code_paths(spec))
    if not changed:
        return None
    return (f"{refused}: {changed[0]} changed since you trusted schedule {spec['name']} (its code differs, "
            f"e.g. after a git pull, or an edit outside Jupyter); review it, then `cellops schedule trust "
            f"{spec['name']}`")


def _schedule(name: str, spec: dict[str, Any], next_run: datetime | None) -> Schedule:
    when = f"cron {spec['cron']}" if spec.get("cron") else f"every {spec['every']:g}s"
    return Schedule(name, spec["target"], when, spec["params"], next_run, spec)


def _when(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts).astimezone() if ts is not None else None


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def rows(ws: Workspace) -> list[Row]:
    """Every schedule row; a row whose spec is not JSON raises WorkspaceError naming it."""
    with ws.db() as conn:
        raw = conn.execute("SELECT name, spec, next_run, rev FROM schedules ORDER BY name").fetchall()
    out = []
    for r in raw:
        try:
            spec = json.loads(r["spec"])
            if not isinstance(spec, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            raise WorkspaceError(f"schedule '{r['name']}' is damaged ({e}); remove it with "
                                 f"`cellops schedule remove {r['name']}` and add it again") from None
        out.append(Row(r["name"], spec, _when(r["next_run"]), r["rev"]))
    return out


def list_schedules(workspace: Workspace | None = None) -> ScheduleList:
    """The schedules, from their rows (no APScheduler, nothing unpickled)."""
    ws = workspace or get_workspace()
    with ws.db() as conn:
        have = _tables(conn)
        if "schedules_unmoved" in have:
            unmoved = [r[0] for r in conn.execute("SELECT name FROM schedules_unmoved ORDER BY name")]
        elif "apscheduler_jobs" in have and "schedules" not in have:  # not migrated (read-only view)
            unmoved = [r[0] for r in conn.execute("SELECT id FROM apscheduler_jobs ORDER BY id")]
        else:
            unmoved = []
    out = ScheduleList()
    if "schedules" in have:
        for r in rows(ws):
            try:
                out.append(_schedule(r.name, r.spec, r.next_run))
            except (KeyError, TypeError, ValueError) as e:
                raise WorkspaceError(f"schedule '{r.name}' is damaged ({type(e).__name__}: {e}); remove "
                                     f"it with `cellops schedule remove {r.name}` and add it again") from None
    out.unmoved = tuple(unmoved)
    return out


def _update(ws: Workspace, name: str, sets: str, args: tuple[Any, ...]) -> None:
    """UPDATE one row and bump its revision (the scheduler re-reads it); NotFoundError if absent."""
    with ws.db(write=True) as conn:
        if conn.execute(f"UPDATE schedules SET {sets}, rev=rev+1 WHERE name=?", (*args, name)).rowcount == 0:
            have = ", ".join(r[0] for r in conn.execute("SELECT name FROM schedules ORDER BY name")) or "(none)"
            raise NotFoundError(f"no schedule '{name}'; schedules: {have}")


def _get(ws: Workspace, name: str) -> Schedule:
    for r in rows(ws):
        if r.name == name:
            return _schedule(r.name, r.spec, r.next_run)
    raise NotFoundError(f"no schedule '{name}'")


def pause(name: str, workspace: Workspace | None = None) -> Schedule:
    ws = workspace or get_workspace()
    _update(ws, name, "next_run=NULL", ())
    return _get(ws, name)


def resume(name: str, workspace: Workspace | None = None) -> Schedule:
    """Back on its trigger from now (runs missed while paused are not caught up)."""
    ws = workspace or get_workspace()
    spec = next((r.spec for r in rows(ws) if r.name == name), None)
    nxt = first_run(trigger_of(spec)) if spec is not None else None
    _update(ws, name, "next_run=?", (nxt.timestamp() if nxt else None,))
    return _get(ws, name)


def remove(name: str, workspace: Workspace | None = None) -> None:
    ws = workspace or get_workspace()
    with ws.db(write=True) as conn:
        gone = conn.execute("DELETE FROM schedules WHERE name=?", (name,)).rowcount
        gone += conn.execute("DELETE FROM schedules_unmoved WHERE name=?", (name,)).rowcount
        if not gone:
            have = ", ".join(r[0] for r in conn.execute("SELECT name FROM schedules ORDER BY name")) or "(none)"
            raise NotFoundError(f"no schedule '{name}'; schedules: {have}")


def set_next_run(name: str, when: datetime, workspace: Workspace | None = None) -> None:
    """Move a schedule's next run time (used to simulate downtime; also a manual 'run at')."""
    _update(workspace or get_workspace(), name, "next_run=?", (when.timestamp(),))


def record_next_run(ws: Workspace, name: str, when: datetime, rev: int) -> None:
    """The scheduler moved a job on: store it, unless the row was edited since (the edit wins)."""
    with ws.db(write=True) as conn:
        conn.execute("UPDATE schedules SET next_run=? WHERE name=? AND rev=?", (when.timestamp(), name, rev))


# -- events -------------------------------------------------------------------------------------
def log_event(ws: Workspace, schedule: str, event: str, *, scheduled_for: float | None = None,
              run_id: str | None = None, attempt: int | None = None, detail: str = "") -> None:
    with ws.db(write=True) as conn:
        conn.execute(
            "INSERT INTO schedule_events (schedule, event, at, scheduled_for, run_id, attempt, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", (schedule, event, time.time(), scheduled_for, run_id,
                                               attempt, detail[:2000]))


def events(name: str | None = None, limit: int = 100,
           workspace: Workspace | None = None) -> list[dict[str, Any]]:
    ws = workspace or get_workspace()
    q, args = "SELECT * FROM schedule_events", []
    if name:
        q, args = q + " WHERE schedule=?", [name]
    with ws.db() as conn:
        rows = conn.execute(q + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
    return [dict(r) for r in reversed(rows)]


# -- one firing (runs inside the scheduler process) ---------------------------------------------
_scheduled_for: dict[str, float] = {}  # job id -> the run time APScheduler submitted it for
_children: set[Any] = set()  # running attempt processes, stopped with the scheduler
_stopping = threading.Event()  # set while the scheduler shuts down: no retries, no hook


def fire(spec: dict[str, Any]) -> str:
    """Run a schedule once: attempts in child processes, retries, timeout, failure hook."""
    from .execute import KIND

    ws = get_workspace(spec["workspace"])
    name, when = spec["name"], _scheduled_for.pop(spec["name"], None)
    refused = untrusted_code(spec)
    if refused:  # the spec is trusted, the notebook it names is not what the user vouched for
        log_event(ws, name, "untrusted_code", scheduled_for=when, detail=refused)
        if spec.get("on_failure"):  # the user's own (trusted) alert says the nightly run did not happen
            _hook(ws, spec, None, refused, KIND)
        return ""
    late = time.time() - when if when else 0.0
    log_event(ws, name, "started", scheduled_for=when,
              detail=f"late by {late:.0f}s (caught up after downtime)" if late > 60 else "")
    run_id, status, error = None, "failed", ""
    for attempt in range(1, spec.get("retries", 0) + 2):
        if attempt > 1:
            time.sleep(spec.get("retry_delay", 30))
        run_id = os.urandom(6).hex()
        status, error = _attempt(ws, spec, run_id)
        if status != "ok" and _stopping.is_set():
            log_event(ws, name, "interrupted", scheduled_for=when, run_id=run_id, attempt=attempt,
                      detail="the scheduler stopped during the run")
            return run_id
        log_event(ws, name, "ok" if status == "ok" else "attempt_failed", scheduled_for=when,
                  run_id=run_id, attempt=attempt, detail=error)
        if status == "ok":
            return run_id
    log_event(ws, name, "failed", scheduled_for=when, run_id=run_id, detail=error)
    if spec.get("on_failure"):
        _hook(ws, spec, run_id, error, KIND)
    return run_id or ""


def _attempt(ws: Workspace, spec: dict[str, Any], run_id: str) -> tuple[str, str]:
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-c", "import sys; from cellops.cli import main; sys.exit(main(sys.argv[1:]))",
           "--workspace", str(ws.root), "run", spec["target"], "--params-json", json.dumps(spec["params"]),
           "--run-id", run_id, "--schedule", spec["name"], "--kernel", spec.get("kernel", "python3")]
    log = ws.artifacts / "runs" / f"{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=str(Path(spec["target"]).parent))
        _children.add(proc)
        try:
            rc = proc.wait(timeout=spec.get("timeout"))
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(proc, signal)
            rc = proc.returncode
        finally:
            _children.discard(proc)
    try:
        run = ws.get_run(run_id)
    except NotFoundError:
        run = None
    if timed_out:
        msg = f"timed out: the scheduler stopped the run after {spec['timeout']:g}s"
        if run is not None:
            ws.update_run(run_id, status="failed", error={"kind": "timeout", "message": msg})
        return "failed", msg
    if run is None:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        return "failed", f"the run did not start (exit {rc}): {' '.join(tail)}"[:500]
    if run["status"] == "running":  # the child died without finishing its record
        ws.update_run(run_id, status="failed", error={"kind": "lost", "message": f"runner exited {rc}"})
        return "failed", f"runner exited {rc}"
    return run["status"], (run["record"].get("error") or {}).get("message", "")


def _stop(proc: Any, signal: Any, grace: float = 20.0) -> None:
    """SIGTERM the attempt's process group (papermill shuts its kernel down), then SIGKILL."""
    import subprocess

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _hook(ws: Workspace, spec: dict[str, Any], run_id: str | None, error: str, kind: str) -> None:
    import subprocess

    rec: dict[str, Any] = {}
    if run_id:
        try:
            rec = ws.get_run(run_id)["record"]
        except NotFoundError:
            pass
    env = {**os.environ, "CELLOPS_SCHEDULE": spec["name"], "CELLOPS_RUN_ID": run_id or "",
           "CELLOPS_RUN_STATUS": "failed", "CELLOPS_RUN_ERROR": error, "CELLOPS_HOME": str(ws.root),
           "CELLOPS_TARGET": spec["target"], "CELLOPS_OUTPUT_NOTEBOOK": str(rec.get("output_notebook") or ""),
           "CELLOPS_OUTPUT_HTML": str(rec.get("output_html") or "")}
    try:
        proc = subprocess.run(spec["on_failure"], shell=True, env=env, capture_output=True, text=True,
                              timeout=120)
        detail = f"exit {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-500:]}"
        log_event(ws, spec["name"], "hook" if proc.returncode == 0 else "hook_failed",
                  run_id=run_id, detail=detail)
    except subprocess.TimeoutExpired:
        log_event(ws, spec["name"], "hook_failed", run_id=run_id, detail="hook timed out after 120s")
