"""Resume a stopped or killed fine-tune, trusting nothing its run folder says.

A run folder may come from someone else (a cloned or shared workspace), and ``run.json`` decides
the launcher's command line, the ranks' workspace, the base weights and the hosts the launcher
ssh-es to with the user's keys. So resume takes from it only what a fresh ``%%finetune`` would take
from the user, and checks it the same way: the config goes back through :class:`FinetuneConfig`
(types and ranges), the workspace and run folder are where the run lies (never the paths written
in it), the base model is resolved again from its URI and must hash to the recorded weights,
the plan and ``ds_config.json`` are made again as at launch (the folder's copy is never read),
and a hostfile needs consent: the user names it again (``resume RUN --hostfile FILE``) or this
user launched the run on this machine with that very file (a digest kept outside the workspace,
``kernels_lib/trust.py`` kind ``runs``). The run folder may hold no symbolic link: the ranks write and
delete checkpoints inside it. Every refusal is one line, before anything starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ..artifacts import write_atomic
from ..errors import CellopsError, JobError, NotFoundError
from ..workspace import Workspace, get_workspace
from .config import ZERO, FinetuneConfig
from .job import Job, last_checkpoint

KIND = "runs"  # trust.py consent file: trusted-runs.json
# keys FinetuneConfig.to_dict adds from the others: recomputed on resume, never read
DERIVED = ("learning_rate", "objective", "use_lora")


def config_of(recorded: Any, where: str = "run.json") -> FinetuneConfig:
    """The recorded config, validated like a fresh launch's (to_dict's derived keys dropped)."""
    if not isinstance(recorded, dict):
        raise JobError(f"{where} holds no fine-tune config; start the run again with %%finetune")
    try:
        return FinetuneConfig.from_dict({k: v for k, v in recorded.items() if k not in DERIVED})
    except CellopsError as e:
        raise JobError(f"refusing to resume: the config in {where} is not valid ({e}); "
                       "start the run again with %%finetune") from None


def _hostfile_sha(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    except OSError:
        return None  # gone: nothing to consent to (check_reachable says so in one line)


def _consent_spec(cfg: FinetuneConfig) -> dict[str, Any]:
    """What a launch consents to: the validated config and the bytes of its hostfile (a hostfile
    inside a repository may change with a ``git pull``)."""
    return {"config": cfg.to_dict(), "hostfile_sha256": _hostfile_sha(cfg.hostfile)}


def record_consent(ws: Workspace, run_id: str, cfg: FinetuneConfig) -> None:
    """The user launched this run here: a later resume may use its hostfile without asking."""
    from .. import trust

    # the form resume rebuilds from run.json (JSON and back), so the digests compare
    norm = config_of(json.loads(json.dumps(cfg.to_dict(), default=str)), "the launch")
    trust.trust(ws.root, [(f"finetune/{norm.name}/{run_id}", _consent_spec(norm))], kind=KIND)


def _consented(ws: Workspace, run_id: str, cfg: FinetuneConfig) -> bool:
    from .. import trust

    return trust.is_trusted(ws.root, f"finetune/{cfg.name}/{run_id}", _consent_spec(cfg), kind=KIND)


def check_folder(ws: Workspace, run_dir: Path, name: str, run_id: str) -> None:
    """The run folder is ``artifacts/finetune/NAME/RUN`` itself (no link on the way) and holds no
    symbolic link: the ranks write checkpoints in it and the Trainer deletes old ones."""
    from .launch import runs_dir

    expected = runs_dir(ws, name) / run_id
    if Path(os.path.realpath(run_dir)) != Path(os.path.realpath(ws.artifacts)) / expected.relative_to(ws.artifacts):
        raise JobError(f"refusing to resume: run folder {run_dir} is not {expected} (a link points "
                       "elsewhere); start the run again with %%finetune")
    inside = Path(os.path.realpath(run_dir))
    for folder, dirs, files in os.walk(run_dir):
        for entry in (*dirs, *files):
            p = Path(folder) / entry
            # W&B's own links (wandb/latest-run) stay inside; one that leaves would be written through
            if p.is_symlink() and not Path(os.path.realpath(p)).is_relative_to(inside):
                raise JobError(f"refusing to resume: {p.relative_to(run_dir)} in run {run_id} is a link to "
                               f"{os.readlink(p)}, outside the run folder, and resume writes and deletes "
                               "inside it (remove the link, or start the run again with %%finetune)")


def rebuild_spec(job: Job, ws: Workspace, hostfile: str | None = None) -> tuple[dict[str, Any], Any]:
    """(run.json as a fresh launch would write it, the plan) from the run's validated config."""
    from ..models.weights import file_hash
    from ..tracking.wandb_log import wandb_enabled
    from . import nodes
    from .launch import tracker_name
    from .plan import ModelShape, make_plan
    from .prepare import device_and_budget, resolve_base

    name, run_id, spec = job.run_dir.parent.name, job.run_dir.name, job.spec
    if spec.get("name") != name or spec.get("run_id") != run_id:
        raise JobError(f"refusing to resume: run.json names run {spec.get('run_id')!r} of {spec.get('name')!r} "
                       f"but lies in finetune/{name}/{run_id}; start the run again with %%finetune")
    check_folder(ws, job.run_dir, name, run_id)
    cfg = config_of(spec.get("config"))
    if cfg.name != name:
        raise JobError(f"refusing to resume: run.json's config names {cfg.name!r}, not {name!r}; "
                       "start the run again with %%finetune")
    if hostfile is not None:  # the user names the hosts now: that is the consent
        cfg = cfg.replace(hostfile=str(Path(hostfile).expanduser().resolve()))
    elif cfg.hostfile and not _consented(ws, run_id, cfg):
        raise JobError(
            f"refusing to resume run {run_id} of {name} on the hosts in {cfg.hostfile}: it was not launched by "
            "you on this machine with that hostfile as it is now (a cloned workspace, or the file changed); "
            f"check the hosts, then name the file yourself: %finetune resume {name} --hostfile FILE")
    if cfg.hostfile:
        nodes.check_reachable(cfg.hostfile)
    base_uri, base_path = resolve_base(cfg.base, ws)
    if file_hash(base_path) != spec.get("base_hash"):
        raise JobError(f"refusing to resume run {run_id} of {name}: base model {cfg.base} ({base_path}) is not "
                       "the weights it started from (its hash differs); start the run again with %%finetune")
    stage = str((spec.get("plan") or {}).get("stage")) if isinstance(spec.get("plan"), dict) else ""
    if stage not in ZERO[1:]:  # the checkpoint's optimizer states are laid out for this stage
        raise JobError(f"refusing to resume: run.json's plan has no ZeRO stage 0-3 ({stage or 'none'}); "
                       "start the run again with %%finetune")
    tracker = tracker_name(cfg)  # the config's --tracker, else this process's (as a launch); known names only
    device, budget, bf16_ok = device_and_budget(cfg)
    plan = make_plan(cfg.replace(zero=stage), ModelShape.read(base_path), device, budget, bf16_ok)
    try:
        counts = {k: int(spec[k]) for k in ("n_train", "n_eval", "train_tokens")}
    except (KeyError, TypeError, ValueError):
        raise JobError("refusing to resume: run.json lacks its row and token counts; "
                       "start the run again with %%finetune") from None
    return {
        "name": name, "workspace": str(ws.root), "run_dir": str(job.run_dir), "config": cfg.to_dict(),
        "plan": plan.to_dict(), "base_uri": base_uri, "base_path": str(base_path), "base_hash": spec["base_hash"],
        **{k: _text(spec.get(k)) for k in ("data_hash", "data_source", "data_format")}, **counts,
        "run_id": run_id, "tracker": tracker, "wandb": tracker == "wandb" and wandb_enabled(),
        "wandb_id": f"ft-{run_id}", "tracker_run_id": _tracker_run(ws, run_id, tracker),
    }, plan


_TRACKER_RUN = re.compile(r"[\w.:-]{1,128}")


def _tracker_run(ws: Workspace, run_id: str, tracker: str) -> str | None:
    """The tracker run the first launch began (its workspace record cites it), for the resumed
    run to continue: only when it logged to the same tracker, and only an id-shaped string."""
    try:
        rec = ws.get_run(run_id).get("record") or {}
    except NotFoundError:
        return None
    rid = rec.get("tracker_run_id") if isinstance(rec, dict) else None
    if not isinstance(rid, str) or rec.get("tracker") != tracker or not _TRACKER_RUN.fullmatch(rid):
        return None
    return rid


def _text(v: Any) -> str | None:
    """A recorded label (data hash, source) for the model card: text or nothing, never an object."""
    return v if v is None or isinstance(v, str) else str(v)


def prepare_resume(name_or_run: str, workspace: Workspace | None = None, hostfile: str | None = None) -> Job:
    """Everything a resume checks and writes before the launcher starts (refusals are one line):
    the run's ``run.json`` and ``ds_config.json`` rewritten from its validated config."""
    from .launch import attach
    from .plan import deepspeed_config
    from .safe_load import refuse_unsafe

    ws = workspace or get_workspace()
    job = attach(name_or_run, ws)
    status = job.status
    if status in ("starting", "running"):
        raise JobError(f"fine-tune {job.name} is still {status}; nothing to resume")
    if status == "done":
        raise JobError(f"fine-tune {job.name} already finished as {job.model}; start a new run instead")
    ckpt = last_checkpoint(job.run_dir / "checkpoints")
    if ckpt is None:
        every = (job.spec.get("config") or {}).get("save_every")
        raise JobError(
            f"run {job.run_id} of {job.name} has no checkpoint to resume from (it saves every "
            f"{every or 'no'} steps); start it again with %%finetune"
        )
    spec, plan = rebuild_spec(job, ws, hostfile)
    refuse_unsafe(ckpt)  # before anything starts: the folder may come from someone else
    cfg = config_of(spec["config"])
    if hostfile is not None:
        record_consent(ws, job.run_id, cfg)  # named by the user: later resumes need not ask again
    # what the ranks read: written from the checked values, whatever the folder held
    was = (job.run_dir / "run.json").stat()
    write_atomic(job.run_dir / "ds_config.json", json.dumps(deepspeed_config(plan, cfg), indent=1))
    write_atomic(job.run_dir / "run.json", json.dumps(spec, indent=1))
    os.utime(job.run_dir / "run.json", ns=(was.st_atime_ns, was.st_mtime_ns))  # runs list newest-started first
    return Job(job.run_dir)


def resume(name_or_run: str, workspace: Workspace | None = None, hostfile: str | None = None) -> Job:
    """Continue a stopped/killed run from its last checkpoint, in the same run folder.
    ``hostfile``: the hosts to resume on (needed for a multi-node run this user did not launch here)."""
    from .launch import _spawn
    from .prepare import free_port

    ws = workspace or get_workspace()
    job = prepare_resume(name_or_run, ws, hostfile)
    ws.update_run(job.run_id, status="running")
    return _spawn(job, port=free_port(int(job.spec["config"]["port"])), resume=True)
