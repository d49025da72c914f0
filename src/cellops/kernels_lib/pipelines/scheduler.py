"""``cellops scheduler``: the one long-running process that runs a workspace's schedules.

One per workspace: an exclusive ``flock`` on ``.cellops/scheduler.lock`` (released by the OS
if the process dies, so a crash never leaves a stale lock); a second scheduler refuses.
It wakes every ``poll`` seconds to pick up schedules added, paused or removed by other
processes (the job store is shared through the database).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime
from typing import IO, Any

from ..errors import JobError
from ..workspace import Workspace, get_workspace
from . import schedules


def _lock(ws: Workspace) -> IO[str]:
    import fcntl

    f = open(ws.root / "scheduler.lock", "a+")  # noqa: SIM115 -- held for the process lifetime
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise JobError(f"a scheduler is already running for {ws.root} ({holder}); "
                       "stop it before starting another") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now():%Y-%m-%d %H:%M:%S}")
    f.flush()
    return f


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


def serve(workspace: Workspace | None = None, *, poll: float = 30.0, max_workers: int = 2,
          stop: threading.Event | None = None, on_ready: Any = None) -> None:
    """Run schedules until ``stop`` is set (the CLI sets it on SIGINT/SIGTERM)."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    ws = workspace or get_workspace()
    lock = _lock(ws)
    stop = stop or threading.Event()
    schedules._stopping.clear()
    sched = BackgroundScheduler(
        jobstores={"default": schedules.jobstore(ws), "internal": MemoryJobStore()},
        executors={"default": _executor(max_workers), "internal": ThreadPoolExecutor(1)},
    )
    sched.add_listener(_listener(ws), EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    # other processes edit the shared store; a periodic wakeup makes this one notice
    sched.add_job(sched.wakeup, "interval", seconds=poll, jobstore="internal", executor="internal",
                  id="_wakeup", max_instances=1, coalesce=True)
    sched.start()
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
