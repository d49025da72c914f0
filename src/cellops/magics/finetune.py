"""%%finetune: SFT or preference tuning (DPO/KTO) as a real DeepSpeed job; %finetune status|attach|stop|resume."""

from __future__ import annotations

import sys
from typing import Any

import yaml
from IPython.core.error import UsageError

from ..kernels_lib import train
from ..kernels_lib.train.config import ADAPTERS, FORMATS, METHODS, ZERO
from .context import MagicArgumentParser, MagicContext
from .views import TextView

parser = MagicArgumentParser(prog="%%finetune")
parser.add_argument("name", help="registry name of the resulting model (NAME@V)")
parser.add_argument("--base", help="base model: default | hf:<dir> | <file.gguf> | NAME@V")
parser.add_argument("--data", help="JSONL/CSV path, or the name of a DataFrame/list variable")
parser.add_argument("--format", choices=FORMATS, help="row format (default: detected)")
parser.add_argument("--method", choices=METHODS, help="lora | full (SFT), dpo | kto | orpo (preference pairs)")
parser.add_argument("--adapter", choices=ADAPTERS, help="dpo/kto/orpo: lora (default) or none (full)")
parser.add_argument("--beta", type=float, help="dpo/kto: pull towards the base model; orpo: odds-ratio weight (default 0.1)")
parser.add_argument("--epochs", type=float)
parser.add_argument("--max-steps", type=int)
parser.add_argument("--lr", type=float)
parser.add_argument("--batch", type=int, help="micro-batch per process")
parser.add_argument("--grad-accum", type=int)
parser.add_argument("--max-len", type=int)
parser.add_argument("--zero", choices=ZERO, help="ZeRO stage (auto: from world size and memory)")
parser.add_argument("--offload", action="store_true", default=None)
parser.add_argument("--procs", type=int, help="processes per node (GPUs, or CPU ranks)")
parser.add_argument("--hostfile", help="DeepSpeed hostfile for multi-node runs")
parser.add_argument("--eval-split", type=float)
parser.add_argument("--seed", type=int)
parser.add_argument("--save-every", type=int, help="checkpoint every N steps")
parser.add_argument("--port", type=int, help="rendezvous port (0: pick a free one)")
parser.add_argument("--tracker", help="experiment tracker: wandb or a plugin's (default: Cellops.tracker, CELLOPS_TRACKER, wandb)")
parser.add_argument("--wait", action="store_true", help="block until done (default outside a live kernel)")
parser.add_argument("--no-wait", action="store_true", help="return at once, even in a batch run")
parser.add_argument("-o", "--output", metavar="VAR", help="store the job in VAR")

sub = MagicArgumentParser(prog="%finetune")
sub.add_argument("command", choices=("status", "list", "attach", "stop", "resume"))  # SUBCOMMANDS
sub.add_argument("name", nargs="?")
sub.add_argument("--wait", action="store_true")
sub.add_argument("--hostfile", help="resume: the hosts to resume a multi-node run on (consent for a run not launched here)")
sub.add_argument("-o", "--output", metavar="VAR")

HELP = f"""Fine-tune a causal LM on your data with a real DeepSpeed job (SFT or DPO/KTO/ORPO; LoRA or full).

Cell:  {parser.format_usage().strip()}
  The body may hold the same settings as YAML (flags win), e.g.
      data: train.jsonl
      method: lora
      lora_r: 16
  Data rows: chat {{"messages": [...]}}, alpaca (instruction/input/output) or prompt/completion;
  loss is on assistant tokens only, with the base model's chat template.
  --method dpo|kto|orpo: preference rows {{"prompt" or "messages", "chosen", "rejected"}} through TRL;
  the model card shows the held-out log-prob margin chosen - rejected before and after.
  In a live notebook the cell returns at once with a live dashboard; the kernel stays free.
  The result is a registered model: use it as %%prompt --model NAME@V.
  Losses, grad norms, evals and the samples go to the experiment tracker (--tracker NAME; default
  %config Cellops.tracker, else CELLOPS_TRACKER, else wandb: offline runs in the run folder).
Line:  %finetune NAME --data PATH ...   (the same run, all settings as flags)
       %finetune status [NAME] | list | attach NAME | stop NAME | resume NAME [--wait] [--hostfile FILE]
  resume rebuilds the run's settings from its recorded config (checked like a new run); a
  multi-node run you did not launch on this machine resumes only with --hostfile FILE.
Settings: {', '.join(f.name for f in train.FinetuneConfig.__dataclass_fields__.values())}
"""

_FLAG_KEYS = ("base", "format", "method", "adapter", "beta", "epochs", "max_steps", "lr", "batch", "grad_accum",
              "max_len", "zero", "offload", "procs", "hostfile", "eval_split", "seed",
              "save_every", "port", "tracker")


def build_config(ctx: MagicContext, line: str, body: str) -> tuple[train.FinetuneConfig, Any]:
    a = parser.parse_line(line)
    settings: dict[str, Any] = {}
    if body.strip():
        try:
            settings = yaml.safe_load(body) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"the %%finetune body must be YAML settings: {e}") from None
        if not isinstance(settings, dict):
            raise UsageError("the %%finetune body must be YAML 'key: value' settings")
    settings |= {k: getattr(a, k) for k in _FLAG_KEYS if getattr(a, k) is not None}
    if a.data is not None:
        settings["data"] = a.data
    data = settings.get("data")
    if isinstance(data, str) and data.isidentifier() and data in ctx.user_ns:
        settings["data"] = ctx.user_ns[data]  # --data VAR: a DataFrame or list in the notebook
    settings["name"] = a.name
    return train.FinetuneConfig.from_dict(settings), a


def show(ctx: MagicContext, job: train.Job, wait: bool) -> Any:
    """Live dashboard (returns at once) or a blocking wait with in-place progress."""
    if not wait and ctx.live:
        from ..widgets.training import TrainingDashboard

        TrainingDashboard(job).display()
        return None
    if not wait:
        return job
    return _wait(ctx, job)


def _wait(ctx: MagicContext, job: train.Job) -> Any:
    from IPython.display import display

    from ..kernels_lib.train.view import progress_line

    handle = display(job, display_id=True) if ctx.live else None
    last_line = [""]

    def on_events(evs: list[dict[str, Any]]) -> None:
        if handle is not None:
            handle.update(job)
            return
        for e in evs:
            if e["kind"] in ("log", "eval", "checkpoint", "plan"):
                # each log event with its own figures: one poll may bring several steps, and
                # printing only the latest made which steps show depend on timing
                line = (progress_line(job.metrics | {k: e.get(k) for k in ("step", "loss", "tokens_per_s", "eta_s")})
                        if e["kind"] == "log" else _describe(e))
                if line != last_line[0]:
                    print(line, file=sys.stdout, flush=True)
                    last_line[0] = line

    try:
        job.wait(on_events=on_events, poll_s=1.0)
    except KeyboardInterrupt:
        print(f"still training in the background; %finetune attach {job.name} or %finetune stop {job.name}")
        return None
    if handle is not None:
        handle.update(job)
        return None
    return job


def _describe(e: dict[str, Any]) -> str:
    if e["kind"] == "plan":
        return e["reason"] + "".join(f"\nnote: {n}" for n in e.get("notes", []))
    if e["kind"] == "eval":
        return f"eval loss ({e.get('phase')}) at step {e.get('step')}: {e.get('eval_loss'):.4f}"
    return f"checkpoint at step {e.get('step')}"


def cell(ctx: MagicContext, line: str, body: str) -> Any:
    cfg, a = build_config(ctx, line, body)
    job = train.launch(cfg, ctx.workspace)
    ctx.store(a.output, job)
    return show(ctx, job, wait=(a.wait or not ctx.live) and not a.no_wait)


def line_command(ctx: MagicContext, line: str) -> Any:
    a = sub.parse_line(line)
    if a.hostfile and a.command != "resume":
        raise UsageError("--hostfile goes with %finetune resume NAME")
    ws = ctx.workspace
    if a.command in ("status", "list") and not a.name:
        return RunsView(train.runs(ws))
    if not a.name:
        raise UsageError(f"usage: %finetune {a.command} NAME")
    if a.command == "stop":
        job = train.stop(a.name, ws)
        return TextView(f"{job.name} run {job.run_id}: {job.status}; %finetune resume {job.name} "
                        "continues from the last checkpoint")
    job = train.resume(a.name, ws, hostfile=a.hostfile) if a.command == "resume" else train.attach(a.name, ws)
    ctx.store(a.output, job)
    if a.command == "status":
        return job
    return show(ctx, job, wait=a.wait)


class RunsView:
    COLUMNS = ("name", "run", "status", "step", "loss", "eval before", "eval after", "model")

    def __init__(self, jobs: list[train.Job]) -> None:
        self.rows = []
        for j in jobs:
            m = j.metrics
            f = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            self.rows.append((j.name, j.run_id, m["status"], f"{m['step']}/{m['max_steps'] or '?'}",
                              f(m.get("loss")), f(m["eval_loss_before"]), f(m["eval_loss_after"]),
                              j.model or "-"))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from ..kernels_lib import html

        if not self.rows:
            return {"text/plain": "(no fine-tuning runs yet)", "text/html": "<i>no fine-tuning runs yet</i>"}
        return {"text/plain": html.text_table(self.COLUMNS, self.rows),
                "text/html": html.box("fine-tuning runs", html.table(self.COLUMNS, self.rows))}


SUBCOMMANDS = ("status", "list", "attach", "stop", "resume")


def run(ctx: MagicContext, line: str, cell_body: str | None) -> Any:
    if cell_body is None:
        words = line.split()
        if words and words[0] not in SUBCOMMANDS:
            return cell(ctx, line, "")  # %finetune NAME --data ...: a run with no YAML body
        return line_command(ctx, line)
    return cell(ctx, line, cell_body)
