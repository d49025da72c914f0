"""``cellops run | runs | replay | report | schedule ... | scheduler``: pipelines from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def _params_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a parameter (typed by the notebook's parameters cell); repeatable")
    p.add_argument("-f", "--params-file", action="append", metavar="FILE",
                   help="YAML file of parameters (name: value); -p wins")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute a notebook or a pipeline .yaml with papermill, recorded")
    p.add_argument("target", help="NOTEBOOK.ipynb or pipeline.yaml")
    _params_args(p)
    p.add_argument("--out", help="also copy the executed notebook and its HTML here")
    p.add_argument("--values-out", metavar="FILE",
                   help="write the values the run recorded (a JSON object) here, for an orchestrator")
    p.add_argument("--timeout", type=float, help="fail the run after this many seconds (whole run)")
    p.add_argument("--retries", type=int, default=0, help="re-run after a failure this many times")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel (default: python3 = this env)")
    p.add_argument("--params-json", help=argparse.SUPPRESS)  # typed params from the scheduler
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    p.add_argument("--schedule", help=argparse.SUPPRESS)
    p.add_argument("--expect-code", help=argparse.SUPPRESS)  # an Airflow task: the code it was exported with
    p.set_defaults(func=_run)

    p = sub.add_parser("runs", help="list recorded runs, or show one run's record")
    p.add_argument("run_id", nargs="?", help="show this run's full record (JSON)")
    p.add_argument("--kind", help="only runs of this kind (pipeline, prompt, ...)")
    p.add_argument("-n", "--limit", type=int, default=20)
    p.set_defaults(func=_runs)

    p = sub.add_parser("replay", help="re-execute a run from its record and compare outputs per cell")
    p.add_argument("run_id")
    p.add_argument("--timeout", type=float, help="whole-run limit in seconds")
    p.set_defaults(func=_replay)

    p = sub.add_parser("report", help="compare runs: metrics table, charts, parameter diffs")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    p.add_argument("--html", help="write the self-contained HTML report here (default: in the workspace)")
    p.set_defaults(func=_report)

    _register_schedule(sub)
    p = sub.add_parser("scheduler", help="run the workspace's schedules (one per workspace)")
    p.add_argument("--poll", type=float, default=30.0, help="seconds between checks for edited schedules")
    p.add_argument("--workers", type=int, default=2, help="schedules that may run at the same time")
    p.add_argument("--trust", action="store_true",
                   help="trust this workspace's schedules although they were not added here (a clone)")
    p.set_defaults(func=_scheduler)


def _register_schedule(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("schedule", help="cron schedules for notebooks and pipelines")
    ssub = sp.add_subparsers(dest="schedule_command", metavar="ACTION")
    sp.set_defaults(func=lambda a: (sp.print_help(), 1)[1])
    p = ssub.add_parser("add", help="schedule a notebook or pipeline .yaml")
    p.add_argument("target")
    p.add_argument("--cron", help="crontab expression, 5 fields, e.g. '0 2 * * *'")
    p.add_argument("--every", type=float, help="or: every N seconds")
    _params_args(p)
    p.add_argument("--name", help="schedule name (default: the file's stem)")
    p.add_argument("--timeout", type=float, help="stop a run after this many seconds")
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--retry-delay", type=float, default=30.0, help="seconds between attempts")
    p.add_argument("--on-failure", metavar="CMD", help="shell command run when a run fails "
                   "(env: CELLOPS_SCHEDULE, CELLOPS_RUN_ID, CELLOPS_RUN_ERROR, CELLOPS_OUTPUT_HTML)")
    p.add_argument("--no-catch-up", action="store_true",
                   help="skip runs missed while no scheduler was running (default: run once)")
    p.add_argument("--kernel", default="python3")
    p.set_defaults(func=_schedule_add)
    ssub.add_parser("list", help="list schedules").set_defaults(func=_schedule_list)
    for action in ("pause", "resume", "remove"):
        p = ssub.add_parser(action, help=f"{action} a schedule")
        p.add_argument("name")
        p.set_defaults(func=_schedule_op, action=action)
    p = ssub.add_parser("trust", help="vouch for a schedule and its notebooks' code as it is now "
                        "(after reviewing a change a git pull brought, or an edit outside Jupyter)")
    p.add_argument("name")
    p.set_defaults(func=_schedule_trust)
    p = ssub.add_parser("events", help="what the scheduler did (fired, retried, missed, skipped)")
    p.add_argument("name", nargs="?")
    p.add_argument("-n", "--limit", type=int, default=30)
    p.set_defaults(func=_schedule_events)
    p = ssub.add_parser("export", help="write an Airflow DAG file for the schedules")
    p.add_argument("--airflow", required=True, metavar="DIR", help="folder for the DAG file")
    p.add_argument("--trust", action="store_true",
                   help="trust this workspace's schedules although they were not added here (a clone)")
    p.set_defaults(func=_schedule_export)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    from ..kernels_lib.pipelines.notebook import parse_cli_params

    if getattr(args, "params_json", None):
        return json.loads(args.params_json)
    return parse_cli_params(args.param, args.params_file)


def _run(args: argparse.Namespace) -> int:
    from ..kernels_lib import pipelines

    if args.expect_code:
        from ..kernels_lib import trust

        trust.require_code(Path(args.target), args.expect_code)
    from ..kernels_lib.errors import InvalidInputError

    if args.values_out and Path(args.values_out).is_dir():
        raise InvalidInputError(f"--values-out {args.values_out} is a folder; give a file path for the values JSON")
    extra = {"schedule": args.schedule} if args.schedule else None
    r = pipelines.run(args.target, _params(args), out_dir=args.out, timeout=args.timeout,
                      retries=args.retries, kernel_name=args.kernel, run_id=args.run_id, extra=extra,
                      progress=sys.stderr.isatty())
    rec = r.record
    print(f"run {r.id}: {r.status} in {rec.get('duration_s', 0):.1f}s")
    for step, info in rec.get("steps", {}).items():
        why = info.get("reason") or (info.get("error") or {}).get("message") or ""
        print(f"  step {step}: {info['status']} {info.get('run_id') or ''} {why}".rstrip())
    if rec.get("output_notebook"):
        print(f"executed notebook: {rec['output_notebook']}")
    if rec.get("output_html"):
        print(f"html: {rec['output_html']}")
    if rec.get("values"):
        print("values: " + json.dumps(rec["values"]))
    if args.values_out:  # written on failure too: a downstream task then names the missing value
        Path(args.values_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.values_out).write_text(json.dumps(rec.get("values") or {}), encoding="utf-8")
    if r.error:
        print(f"error: {r.error.get('message')}", file=sys.stderr)
    return 0 if r.ok else 1


def _runs(args: argparse.Namespace) -> int:
    from ..kernels_lib import html
    from ..kernels_lib.workspace import get_workspace

    ws = get_workspace()
    if args.run_id:
        print(json.dumps(ws.get_run(args.run_id), indent=2, default=str))
        return 0
    rows = []
    for r in ws.list_runs(args.kind, limit=args.limit):
        rec = r["record"]
        what = rec.get("step") and f"step {rec['step']} of {rec.get('chain')}" or rec.get("schedule") or ""
        err = (rec.get("error") or {}).get("message", "") if isinstance(rec.get("error"), dict) else ""
        rows.append((r["id"], r["kind"], f"{r['name'] or ''}" + (f"@{r['version']}" if r["version"] else ""),
                     r["status"], datetime.fromtimestamp(r["created_at"]).strftime("%Y-%m-%d %H:%M:%S"),
                     what, err[:60]))
    print(html.text_table(("id", "kind", "name", "status", "started", "via", "error"), rows)
          if rows else "(no runs yet)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ..kernels_lib import pipelines

    result = pipelines.replay(args.run_id, timeout=args.timeout)
    print(result)
    return 0 if result.matched else 1


def _report(args: argparse.Namespace) -> int:
    from ..kernels_lib import pipelines

    rep = pipelines.report(args.run_ids, html_path=args.html)
    print(rep)
    return 0


def _schedule_add(args: argparse.Namespace) -> int:
    from ..kernels_lib.pipelines import schedules
    from ..kernels_lib.pipelines.scheduler import running

    s = schedules.add(args.target, cron=args.cron, every=args.every, params=_params(args),
                      name=args.name, timeout=args.timeout, retries=args.retries,
                      retry_delay=args.retry_delay, on_failure=args.on_failure,
                      catch_up=not args.no_catch_up, kernel_name=args.kernel)
    print(f"scheduled '{s.name}': {s.trigger}, next run {s.next_run:%Y-%m-%d %H:%M:%S}")
    if not running():
        print("no scheduler is running for this workspace: start one with `cellops scheduler`")
    return 0


def _schedule_list(args: argparse.Namespace) -> int:
    from ..kernels_lib.pipelines import schedules
    from ..kernels_lib.pipelines.scheduler import running

    print(schedules.list_schedules())
    who = running()
    print(f"scheduler: {who}" if who else "scheduler: not running (start it with `cellops scheduler`)")
    return 0


def _schedule_op(args: argparse.Namespace) -> int:
    from ..kernels_lib.pipelines import schedules

    result = getattr(schedules, args.action)(args.name)
    if result is None:
        print(f"removed schedule '{args.name}'")
    else:
        nxt = "paused" if result.paused else f"next run {result.next_run:%Y-%m-%d %H:%M:%S}"
        print(f"schedule '{result.name}': {nxt}")
    return 0


def _schedule_trust(args: argparse.Namespace) -> int:
    from ..kernels_lib.pipelines import schedules

    s = schedules.trust_schedule(args.name)
    files = ", ".join(str(p) for p in schedules.code_paths(s.spec))
    print(f"schedule '{s.name}' trusted, with the code of {files} as it is now")
    return 0


def _schedule_events(args: argparse.Namespace) -> int:
    from ..kernels_lib import html
    from ..kernels_lib.pipelines import schedules

    rows = [(e["schedule"], datetime.fromtimestamp(e["at"]).strftime("%Y-%m-%d %H:%M:%S"), e["event"],
             e["run_id"] or "", e["attempt"] or "", (e["detail"] or "")[:70])
            for e in schedules.events(args.name, args.limit)]
    print(html.text_table(("schedule", "at", "event", "run", "attempt", "detail"), rows)
          if rows else "(no schedule events yet)")
    return 0


def _schedule_export(args: argparse.Namespace) -> int:
    from ..kernels_lib.pipelines import airflow

    path = airflow.export(args.airflow, trust_all=args.trust)
    print(f"wrote {path}")
    return 0


def _scheduler(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..kernels_lib.pipelines import schedules
    from ..kernels_lib.pipelines.scheduler import serve

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def ready() -> None:
        print(f"cellops scheduler running (pid {__import__('os').getpid()}); "
              f"{len(schedules.list_schedules())} schedule(s); Ctrl-C to stop", flush=True)

    serve(poll=args.poll, max_workers=args.workers, stop=stop, on_ready=ready, trust_all=args.trust)
    print("scheduler stopped", flush=True)
    return 0
