"""Start, find and stop fine-tuning runs (resume.py resumes them).

``launch(config)`` validates everything in the calling process (see prepare.py), writes the run
folder ``artifacts/finetune/NAME/RUN_ID`` and starts the supervisor, which runs the real
``deepspeed`` launcher: one process here, many GPUs or nodes elsewhere, always the same path.
It returns at once with a :class:`Job`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..artifacts import write_atomic
from ..errors import InvalidInputError, JobError, NotFoundError
from ..tracking import Trace, traces
from ..workspace import Workspace, check_name, get_workspace
from . import events, nodes, op_builds
from .config import FinetuneConfig
from .job import Job
from .prepare import free_port, plan_event, prepare
from .resume import record_consent

RUNS = "finetune"


def as_config(config: FinetuneConfig | dict[str, Any]) -> FinetuneConfig:
    if isinstance(config, FinetuneConfig):
        config.validate()
        return config
    if isinstance(config, dict):
        return FinetuneConfig.from_dict(config)
    raise InvalidInputError(
        f"launch() takes a FinetuneConfig or a dict of its fields ({', '.join(f.name for f in fields(FinetuneConfig))})"
    )


def runs_dir(ws: Workspace, name: str) -> Path:
    return ws.artifacts / RUNS / check_name(name)


def launch(config: FinetuneConfig | dict[str, Any], workspace: Workspace | None = None) -> Job:
    """Validate, write the run folder, start the DeepSpeed job; returns immediately."""
    cfg = as_config(config)
    if cfg.hostfile:  # recorded absolute: a resume from another folder names the same file
        cfg = cfg.replace(hostfile=str(Path(cfg.hostfile).expanduser().resolve()))
    ws = workspace or get_workspace()
    if not cfg.name:
        raise InvalidInputError("a fine-tune needs a name: %%finetune NAME --base default --data PATH")
    _refuse_if_running(ws, cfg.name)
    tracker = tracker_name(cfg)
    port = free_port(cfg.port) if cfg.port else 0  # a taken port fails before any work
    run_id = uuid.uuid4().hex[:12]
    run_dir = runs_dir(ws, cfg.name) / run_id
    run_dir.mkdir(parents=True)
    trace = Trace(f"finetune {cfg.name}", **{"gen_ai.request.model": cfg.base, "cellops.method": cfg.method,
                                             "cellops.run_id": run_id})
    try:
        from ..guard import active_policy

        with trace.span("prepare", kind="step"):  # data, tokenizer, plan: all checked here
            if cfg.hostfile:  # before tokenizing: an unreachable node fails in seconds
                nodes.check_reachable(cfg.hostfile)
            spec = prepare(cfg, ws, run_dir, active_policy(ws))
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing started: leave no half run behind
        traces.save(ws, trace)  # the failed launch is still one trace, its error on "prepare"
        raise
    from ..tracking.wandb_log import wandb_enabled

    spec |= {"run_id": run_id, "tracker": tracker, "wandb": tracker == "wandb" and wandb_enabled(),
             "wandb_id": f"ft-{run_id}"}
    record_consent(ws, run_id, cfg)  # launched here by this user: its resume may use the hostfile
    write_atomic(run_dir / "run.json", json.dumps(spec, indent=1, default=str))
    ws.record_run(RUNS, {k: spec[k] for k in ("config", "plan", "base_uri", "data_hash", "run_dir",
                                             "n_train", "n_eval")} | {"trace_id": trace.trace_id},
                  name=cfg.name, status="running", run_id=run_id)
    plan_event(run_dir, spec)
    with trace.span("launch", kind="tool", **{"cellops.procs": cfg.procs,
                                              "cellops.device": str(spec["plan"].get("device"))}) as span:
        job = _spawn(Job(run_dir), port=port or free_port(0), resume=False)
        span.attrs["cellops.pid"] = job._popen.pid if job._popen is not None else 0
    traces.save(ws, trace, run_id)
    return job


def tracker_name(cfg: FinetuneConfig) -> str:
    """``--tracker``, else the process's tracker (``tracking.active_name``); an unknown name stops
    the launch here in one line listing the registered ones."""
    from ..tracking import active_name, trackers

    name = cfg.tracker or active_name()
    trackers.get(name)
    return name


def launcher_cmd(spec: dict[str, Any], run_dir: Path, port: int, resume: bool) -> list[str]:
    """The ``deepspeed`` launcher command line (the same one works on a cluster login node)."""
    exe = Path(sys.executable).parent / "deepspeed"
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "deepspeed.launcher.runner"]
    cfg = spec["config"]
    cmd = head + ["--num_gpus", str(cfg["procs"]), "--master_port", str(port)]
    if cfg.get("hostfile"):
        cmd += ["--hostfile", str(Path(cfg["hostfile"]).expanduser().resolve())]
    cmd += ["--no_local_rank", "--module", "cellops.kernels_lib.train.worker", "--run-dir", str(run_dir)]
    return cmd + (["--resume"] if resume else [])


def _env(spec: dict[str, Any], run_dir: Path) -> dict[str, str]:
    from ..tracking.wandb_log import wandb_mode

    env = dict(os.environ)
    env["CELLOPS_HOME"] = spec["workspace"]
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # TRL's trainers ping the Hub when they start
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # ``python -m`` puts its working directory (the run folder) first on sys.path: a cloned run
    # folder holding json.py or cellops/ would run in the supervisor and every rank without this
    env["PYTHONSAFEPATH"] = "1"
    env.setdefault("TORCH_EXTENSIONS_DIR", str(op_builds.build_root()))  # see op_builds.py
    if spec["plan"]["device"] == "cpu":
        env["DS_ACCELERATOR"] = "cpu"
        procs = int(spec["config"]["procs"])
        if procs > 1 and "OMP_NUM_THREADS" not in os.environ:
            # ranks on one CPU would otherwise each start a thread per core and thrash
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // procs))
    if spec.get("tracker"):  # the worker's tracking.tracker is the run's tracker too
        env["CELLOPS_TRACKER"] = spec["tracker"]
    if spec.get("wandb"):  # read by the wandb tracker in rank 0 (tracking/wandb_log.py)
        env["WANDB_MODE"] = wandb_mode()  # offline unless set / logged in
        env.setdefault("WANDB_PROJECT", "cellops")
        env["WANDB_DIR"] = str(run_dir)
        env["WANDB_RUN_ID"] = spec["wandb_id"]
        env["WANDB_RESUME"] = "allow"  # a resumed run continues the same W&B run
        env.setdefault("WANDB_SILENT", "true")
    return env


def _spawn(job: Job, port: int, resume: bool) -> Job:
    run_dir = job.run_dir
    cmd = launcher_cmd(job.spec, run_dir, port, resume)
    write_atomic(run_dir / "launch.json", json.dumps(
        {"cmd": cmd, "port": port, "workspace": job.spec["workspace"], "run_id": job.run_id}, indent=1))
    (run_dir / "stop").unlink(missing_ok=True)
    env = _env(job.spec, run_dir)
    if job.spec["config"].get("hostfile"):  # the ranks on other nodes get only what this file names
        nodes.write_env_file(run_dir, env)
    else:  # DeepSpeed reads it from the run folder for multi-node runs only; never leave a planted one
        (run_dir / nodes.ENV_FILE).unlink(missing_ok=True)
    (run_dir / "exit.json").unlink(missing_ok=True)
    stale = op_builds.sweep_stale_locks(Path(env["TORCH_EXTENSIONS_DIR"]))  # else the ranks wait for ever
    events.append(job.events_path, "launch", resume=resume, port=port, cmd=cmd,
                  removed_stale_locks=[str(p) for p in stale])
    log = open(run_dir / "supervisor.log", "ab")
    try:
        # A new session: the run survives a kernel restart, and stop() signals the whole group.
        proc = subprocess.Popen(
            [sys.executable, "-m", "cellops.kernels_lib.train.supervise", str(run_dir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=run_dir,
            env=env, start_new_session=True,
        )
    except OSError as e:
        events.append(job.events_path, "error", message=f"cannot start the launcher: {e}")
        raise JobError(f"cannot start the training launcher: {e}") from None
    finally:
        log.close()
    write_atomic(run_dir / "supervisor.pid", str(proc.pid))
    job._popen = proc
    return job


def _refuse_if_running(ws: Workspace, name: str) -> None:
    for job in _jobs(ws, name):
        if job.status in ("starting", "running"):
            raise JobError(
                f"fine-tune {name} is already running (run {job.run_id}); "
                f"%finetune attach {name} to watch it or %finetune stop {name}"
            )


def _jobs(ws: Workspace, name: str) -> list[Job]:
    """Runs of ``name``, newest first."""
    folder = runs_dir(ws, name)
    if not folder.is_dir():
        return []
    dirs = [d for d in folder.iterdir() if (d / "run.json").exists()]
    return [Job(d) for d in sorted(dirs, key=lambda d: (d / "run.json").stat().st_mtime, reverse=True)]


def attach(name_or_run: str, workspace: Workspace | None = None) -> Job:
    """The latest run of NAME (or the run with this id prefix)."""
    ws = workspace or get_workspace()
    if "@" not in name_or_run:
        jobs = _jobs(ws, name_or_run)
        if jobs:
            return jobs[0]
    try:
        run = ws.get_run(name_or_run)
    except NotFoundError:
        run = None
    if run and run["kind"] == RUNS:
        # where this workspace keeps the run, not the path its record names (a crafted or moved db)
        folder = runs_dir(ws, run["name"] or "") / check_name(run["id"])
        if (folder / "run.json").exists():
            return Job(folder)
    names = sorted(d.name for d in (ws.artifacts / RUNS).glob("*") if d.is_dir()) if (ws.artifacts / RUNS).is_dir() else []
    raise NotFoundError(f"no fine-tuning run named '{name_or_run}'; runs: {', '.join(names) or '(none yet)'}")


def stop(name_or_run: str, workspace: Workspace | None = None) -> Job:
    job = attach(name_or_run, workspace)
    job.stop()
    return job


def runs(workspace: Workspace | None = None) -> list[Job]:
    """The latest run of every fine-tune name."""
    ws = workspace or get_workspace()
    root = ws.artifacts / RUNS
    if not root.is_dir():
        return []
    out = [_jobs(ws, d.name) for d in sorted(root.iterdir()) if d.is_dir()]
    return [j[0] for j in out if j]
