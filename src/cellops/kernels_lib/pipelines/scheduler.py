"""``cellops scheduler``: the one long-running process that runs a workspace's schedules.

One per workspace: an exclusive ``flock`` on ``.cellops/scheduler.lock`` (released by the OS
if the process dies, so a crash never leaves a stale lock); a second scheduler refuses.
Its APScheduler jobs live in memory only (nothing pickled): they are built from the
``schedules`` rows at start, and every ``poll`` seconds the rows are read again so schedules
added, paused, moved or removed by other processes take effect; a job whose run time the
scheduler moves on is written back to its row (schedules.py).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime
from typing import IO, Any

from .. import trust
from ..errors import CellopsError, JobError
from ..locks import Busy, hold
from ..workspace import Workspace, get_workspace
from . import schedules


def _lock(ws: Workspace) -> IO[str]:
    since = f"{datetime.now():%Y-%m-%d %H:%M:%S}"
    try:  # held for the process lifetime
        return hold(ws.root / "scheduler.lock", f"pid {os.getpid()} on {socket.gethostname()} since {since}")
    except Busy as e:
        raise JobError(f"a scheduler is already running for {ws.root} ({e.holder or 'another process'}); "
                       "stop it before starting another") from None


def running(ws: Workspace | None = None) -> str | None:
    """Who holds the scheduler lock ("pid N on host since ..."), or None."""
    import fcntl

    ws = ws or get_workspace()
    path = ws.root / "scheduler.lock"
    if not path.exists():
        return None
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            return f.read().strip() or "running"
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def _executor(workers: int) -> Any:
    """A thread pool that tells ``fire`` which run time it was submitted for (APScheduler's
    submission event arrives after the job may already have started)."""
    from apscheduler.executors.pool import ThreadPoolExecutor

    class Executor(ThreadPoolExecutor):  # type: ignore[misc]
        def _do_submit_job(self, job: Any, run_times: list[Any]) -> None:
            if run_times:
                schedules._scheduled_for[job.id] = run_times[-1].timestamp()
            super()._do_submit_job(job, run_times)

    return Executor(workers)


def _listener(ws: Workspace) -> Any:
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED

    def on_event(event: Any) -> None:
        if event.code == EVENT_JOB_MISSED:
            schedules.log_event(ws, event.job_id, "missed",
                                scheduled_for=event.scheduled_run_time.timestamp(),
                                detail="the scheduler was not running at that time (catch_up off)")
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            times = [t.timestamp() for t in event.scheduled_run_times]
            schedules.log_event(ws, event.job_id, "skipped_overlap", scheduled_for=times[-1] if times else None,
                                detail="the previous run was still going")

    return on_event


class _Sync:
    """Keeps the scheduler's in-memory jobs equal to the ``schedules`` rows (by revision)."""

    def __init__(self, ws: Workspace, sched: Any) -> None:
        self.ws, self.sched = ws, sched
        self.revs: dict[str, int] = {}  # job id -> the row revision it was built from
        self._lock = threading.Lock()

    def store(self) -> Any:
        from apscheduler.jobstores.memory import MemoryJobStore

        sync = self

        class RowStore(MemoryJobStore):  # type: ignore[misc]
            def update_job(self, job: Any) -> None:  # the scheduler moved a job on: keep the row in step
                super().update_job(job)
                rev = sync.revs.get(job.id)
                if job.next_run_time is not None and rev is not None:
                    schedules.record_next_run(sync.ws, job.id, job.next_run_time, rev)

        return RowStore()

    def __call__(self) -> None:
        with self._lock:
            try:
                rows = {r.name: r for r in schedules.rows(self.ws)}
            except CellopsError as e:  # a damaged row: keep running what we have, say why once
                schedules.log_event(self.ws, "(scheduler)", "sync_failed", detail=str(e))
                return
            for name in set(self.revs) - set(rows):
                self._drop(name)
            for name, row in rows.items():
                if self.revs.get(name) != row.rev:
                    self._drop(name)
                    self._build(row)

    def _drop(self, name: str) -> None:
        self.revs.pop(name, None)
        if self.sched.get_job(name, "default") is not None:  # None: its row was damaged, never built
            self.sched.remove_job(name, "default")

    def _build(self, row: schedules.Row) -> None:
        self.revs[row.name] = row.rev  # before add_job: adding may call update_job
        if not trust.is_trusted(self.ws.root, row.name, row.spec):  # written by another user/clone
            schedules.log_event(self.ws, row.name, "untrusted",
                                detail="not added by you on this machine; restart with `cellops scheduler --trust`")
            return
        try:
            trig = schedules.trigger_of(row.spec)
        except CellopsError as e:
            schedules.log_event(self.ws, row.name, "invalid", detail=str(e))
            return
        catch_up = row.spec.get("catch_up", True)
        self.sched.add_job(schedules.fire, trig, kwargs={"spec": row.spec}, id=row.name, name=row.name,
                           jobstore="default", max_instances=1, coalesce=True,
                           misfire_grace_time=None if catch_up else 1, next_run_time=row.next_run)


def serve(workspace: Workspace | None = None, *, poll: float = 30.0, max_workers: int = 2,
          stop: threading.Event | None = None, on_ready: Any = None, trust_all: bool = False) -> None:
    """Run schedules until ``stop`` is set (the CLI sets it on SIGINT/SIGTERM). Schedules not
    added by this user on this machine are refused (trust.py) unless ``trust_all`` consents."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    ws = workspace or get_workspace()
    present = [(r.name, r.spec) for r in schedules.rows(ws)]
    if trust_all:
        schedules.consent(ws.root, present)
    trust.refuse_untrusted(ws.root, present)
    lock = _lock(ws)
    stop = stop or threading.Event()
    schedules._stopping.clear()
    sched = BackgroundScheduler(executors={"default": _executor(max_workers), "internal": ThreadPoolExecutor(1)})
    sync = _Sync(ws, sched)
    sched.add_jobstore(sync.store(), "default")
    sched.add_jobstore(MemoryJobStore(), "internal")
    sched.add_listener(_listener(ws), EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    sched.start()
    sync()
    # other processes edit the rows; a periodic re-read makes this one notice
    sched.add_job(sync, "interval", seconds=poll, jobstore="internal", executor="internal",
                  id="cellops:sync", max_instances=1, coalesce=True)
    ws.set_state("scheduler", {"pid": os.getpid(), "started_at": time.time(), "poll": poll})
    try:
        if on_ready is not None:
            on_ready()
        while not stop.wait(0.5):
            pass
    finally:
        schedules._stopping.set()
        for proc in list(schedules._children):  # running attempts: stop them cleanly
            import signal

            schedules._stop(proc, signal, grace=10.0)
        sched.shutdown(wait=True)
        ws.set_state("scheduler", None)
        lock.close()
