"""``cellops finetune``: start a fine-tune from a YAML config, follow, stop or resume runs."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tuning runs (DeepSpeed): run, status, stop, resume")
    fsub = p.add_subparsers(dest="ft_command", metavar="ACTION", required=True)
    r = fsub.add_parser("run", help="start a run from a YAML file of FinetuneConfig settings")
    r.add_argument("config", help="YAML: name, base, data, method, max_steps, procs, zero, ...")
    r.add_argument("--wait", action="store_true", help="follow the run until it ends")
    s = fsub.add_parser("status", help="all runs, or one run in detail")
    s.add_argument("name", nargs="?")
    for action in ("stop", "resume"):
        a = fsub.add_parser(action, help=f"{action} the latest run of NAME")
        a.add_argument("name")
        if action == "resume":
            a.add_argument("--wait", action="store_true")
            a.add_argument("--hostfile", help="the hosts to resume a multi-node run on (needed for a "
                           "run not launched by you on this machine)")
    p.set_defaults(func=_finetune)


def _follow(job) -> int:  # noqa: ANN001
    from ..kernels_lib.train.view import progress_line

    def show(evs: list) -> None:
        if any(e["kind"] == "log" for e in evs):
            print(progress_line(job.metrics), flush=True)

    job.wait(on_events=show, poll_s=1.0)
    print(f"done: {job.model}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    import yaml

    from ..kernels_lib import html, train
    from ..kernels_lib.errors import InvalidInputError

    if args.ft_command == "run":
        try:
            with open(args.config) as f:
                settings = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise InvalidInputError(f"cannot read {args.config}: {e}") from None
        if not isinstance(settings, dict):
            raise InvalidInputError(f"{args.config} must hold 'key: value' settings")
        job = train.launch(settings)
        print(f"{job.name} run {job.run_id}: {job.plan['reason']}")
        return _follow(job) if args.wait else 0
    if args.ft_command == "status" and not args.name:
        rows = [(j.name, j.run_id, j.status, j.metrics["step"], j.model or "-") for j in train.runs()]
        print(html.text_table(("name", "run", "status", "step", "model"), rows) if rows else "(no runs yet)")
        return 0
    if args.ft_command == "stop":
        job = train.stop(args.name)
        print(f"{job.name} run {job.run_id}: {job.status}")
        return 0
    if args.ft_command == "resume":
        job = train.resume(args.name, hostfile=args.hostfile)
        return _follow(job) if args.wait else 0
    job = train.attach(args.name)
    print(repr(job) if job.status != "done" else job._repr_mimebundle_()["text/plain"], file=sys.stdout)
    return 0
