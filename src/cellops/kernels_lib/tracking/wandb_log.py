"""W&B logging that never slows a cell down.

One W&B run per process (a notebook kernel, a pipeline run, a training rank 0), started lazily by
a background thread: ``wandb.init`` costs seconds, and a prompt cell should not wait for it.
The run id is chosen up front so records can cite it immediately (``WANDB_RUN_ID`` when set, as
``wandb.init`` reads it: a fine-tune's ranks continue ``ft-<run id>``); its files go to
``WANDB_DIR`` when set (a fine-tune's run folder), else into the workspace.

Mode: ``WANDB_MODE`` if set; otherwise ``online`` when the user has logged in (an API key is
configured), else ``offline`` (no account needed; ``wandb sync`` uploads later).
``CELLOPS_WANDB=off`` disables W&B entirely (records still go to the workspace).

When W&B fails (not installed, its folder blocked, no API key for online mode) it is off for the
rest of the process: the failure is shown once as a RuntimeWarning, later ``start`` calls return
None, and every record that already cited the run id (written while ``wandb.init`` was still
running) has its ``tracker_run_id`` cleared and the reason put in ``tracker_error``, so no record
points at a run that was never written.
"""

from __future__ import annotations

import atexit
import os
import queue
import secrets
import sqlite3
import string
import threading
import warnings
from pathlib import Path
from typing import Any

from ..errors import CellopsError

_ALPHABET = string.ascii_lowercase + string.digits


def wandb_enabled() -> bool:
    return os.environ.get("CELLOPS_WANDB", "on").lower() not in {"off", "0", "false", "disabled"}


def wandb_mode() -> str:
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    if netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


class _Tracker:
    """Queue of log calls served by one daemon thread that owns the W&B run."""

    def __init__(self) -> None:
        self._q: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.run_id: str | None = None
        self.run_dir: str | None = None
        self.error: str | None = None
        self.failed = False  # wandb.init failed: no run exists for run_id
        self._warned = False
        self._roots: set[Path] = set()  # workspaces whose records may cite run_id
        self._dir: Path | None = None
        self._config: dict[str, Any] = {}

    def start(self, workspace_root: Path, job_type: str = "notebook",
              config: dict[str, Any] | None = None) -> str | None:
        """Start (once per process) and return the W&B run id, or None when disabled."""
        if not wandb_enabled():
            return None
        with self._lock:
            if self._thread is None:
                self.run_id = os.environ.get("WANDB_RUN_ID") or "".join(secrets.choice(_ALPHABET) for _ in range(8))
                self.error, self.failed, self._warned, self._roots = None, False, False, set()
                self._dir = Path(workspace_root)
                self._config = {"job_type": job_type, **(config or {})}
                self._thread = threading.Thread(target=self._serve, name="cellops-wandb", daemon=True)
                self._thread.start()
                atexit.register(self.finish)  # a short script still gets its run written
            self._roots.add(Path(workspace_root))
            failed = self.failed
        if failed:
            self._uncite()  # a record written while init was failing
            return None
        return self.run_id

    def _fail(self, message: str) -> None:
        """W&B is unusable: say so once; no record may keep citing the run."""
        with self._lock:
            self.error, first = message, not self._warned
            self._warned = True
        if first:
            warnings.warn(f"{message}; W&B tracking is off for this session (runs are still recorded "
                          "in the workspace)", RuntimeWarning, stacklevel=2)

    def _uncite(self) -> None:
        """Clear ``tracker_run_id`` in every record citing a run that was never written."""
        from ..workspace import get_workspace

        for root in list(self._roots):
            with get_workspace(root).db(write=True) as conn:
                conn.execute(
                    "UPDATE runs SET record = json_set(record, '$.tracker_run_id', NULL, '$.tracker_error', ?)"
                    " WHERE json_extract(record, '$.tracker') = 'wandb'"
                    " AND json_extract(record, '$.tracker_run_id') = ?", (self.error, self.run_id))

    def log(self, data: dict[str, Any], tables: dict[str, tuple[list[str], list[list[Any]]]] | None = None) -> None:
        """Log scalars/text; ``tables`` maps a key to (columns, rows) logged as a wandb.Table."""
        if self._thread is not None:
            self._q.put(("log", (data, tables or {})))

    def summary(self, data: dict[str, Any]) -> None:
        if self._thread is not None:
            self._q.put(("summary", data))

    def flush(self, timeout: float = 120.0) -> None:
        if self._thread is None:
            return
        done = threading.Event()
        self._q.put(("flush", done))
        done.wait(timeout)

    def finish(self) -> None:
        """Flush and close the run; idempotent (it is registered twice with atexit)."""
        if self.failed and self._thread is not None:
            self._uncite()  # records written since the failure
        if self._thread is None or not self._thread.is_alive():
            self._thread = None
            return
        self.flush()
        self._q.put(None)
        self._thread.join(timeout=60)
        self._thread = None

    def _serve(self) -> None:
        run = None
        try:
            os.environ.setdefault("WANDB_SILENT", "true")
            import wandb

            assert self._dir is not None
            Path(os.environ.get("WANDB_DIR") or self._dir).mkdir(parents=True, exist_ok=True)
            run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "cellops"), id=self.run_id,
                dir=os.environ.get("WANDB_DIR") or str(self._dir), mode=wandb_mode(), job_type=self._config["job_type"],
                config=self._config, settings=wandb.Settings(console="off", silent=True),
            )
            self.run_dir = str(Path(run.dir).parent)
            # Registered again after wandb's own exit hooks so it runs before them (atexit is
            # LIFO): the run must finish while wandb's service process is still there.
            atexit.register(self.finish)
        except Exception as e:  # tracking must never break the user's work
            self.failed = True
            self._fail(f"W&B could not start ({type(e).__name__}: {e})")
            try:
                self._uncite()
            except (CellopsError, sqlite3.Error) as db_error:  # the next start() or finish() retries
                self.error = f"{self.error}; records citing {self.run_id} not cleared yet ({db_error})"
        while True:
            item = self._q.get()
            if item is None:
                break
            op, arg = item
            if op == "flush":
                arg.set()
                continue
            if run is None:
                continue
            try:
                if op == "log":
                    data, tables = arg
                    payload = dict(data)
                    for key, (cols, rows) in tables.items():
                        payload[key] = wandb.Table(columns=cols, data=rows)
                    run.log(payload)
                elif op == "summary":
                    run.summary.update(arg)
            except Exception as e:  # the run exists; this one entry is lost, the work is not
                self._fail(f"W&B could not log to run {self.run_id} ({type(e).__name__}: {e})")
        if run is not None:
            run.finish()


tracker = _Tracker()
