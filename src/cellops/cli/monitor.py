"""``cellops monitor NAME [--json]``: a served app's dashboard; ``cellops monitor check NAME
--rules rules.yaml [--on-alert CMD]``: alert rules (exit 1 when one trips)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="a served app's traffic, latency, drift and A/B figures; "
                                       "'monitor check NAME --rules R' for alerts")
    p.add_argument("name", help="the served app, or 'check'")
    p.add_argument("app", nargs="?", help="(after 'check') the served app")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--html", metavar="FILE", help="also write the dashboard as a static HTML file")
    p.add_argument("--since", help="only requests since: 30m, 2h, 1d, an ISO date or a unix time")
    p.add_argument("--reference", default="50", help="drift reference: the first N requests, or a dataset "
                   "version NAME@V[:SPLIT] (its inputs)")
    p.add_argument("--window", type=int, help="drift current window: the last N requests (default: --reference)")
    p.add_argument("--rules", help="(check) YAML alert rules")
    p.add_argument("--on-alert", metavar="CMD", help="(check) shell command run when a rule trips")
    p.set_defaults(func=_monitor)


def _monitor(a: argparse.Namespace) -> int:
    from ..kernels_lib import monitoring

    since = monitoring.parse_since(a.since)
    if a.name == "check":
        return _check(a, since)
    board = monitoring.monitor(a.name, since, monitoring.parse_reference(a.reference), a.window)
    if a.html:
        from pathlib import Path

        Path(a.html).write_text(board._repr_mimebundle_()["text/html"], encoding="utf-8")
    print(board.to_json() if a.json else board._repr_mimebundle_()["text/plain"])
    return 0


def _check(a: argparse.Namespace, since: float | None) -> int:
    from ..kernels_lib.monitoring.alerts import check, run_hook

    if not a.app or not a.rules:
        print("usage: cellops monitor check NAME --rules rules.yaml [--on-alert CMD]", file=sys.stderr)
        return 2
    result = check(a.app, a.rules, since=since)
    print(result.to_json() if a.json else result._repr_mimebundle_()["text/plain"])
    if not result.tripped:
        return 0
    if a.on_alert:
        code = run_hook(a.on_alert, result)
        if code:
            print(f"cellops: --on-alert command exited with {code}", file=sys.stderr)
    return 1
