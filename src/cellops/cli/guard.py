"""``cellops guard``: evaluate, check, list and show guard policies."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("guard", help="guard policies: eval, check, list, show, on, off, status")
    gsub = p.add_subparsers(dest="guard_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 1)[1])

    e = gsub.add_parser("eval", help="precision/recall/F1, benign FPR and latency of POLICY on DATA.jsonl")
    e.add_argument("policy", help="default, strict, a saved NAME[@V], or a YAML file")
    e.add_argument("data", help='JSONL rows {"text","label"} or PII rows {"text","spans"}')
    e.add_argument("--rail", default="input", choices=("input", "output", "retrieval"))
    e.add_argument("--limit", type=int, help="only the first N rows")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--errors", type=int, default=5, help="show up to N misclassified rows")
    e.set_defaults(func=_eval)

    c = gsub.add_parser("check", help="check one text")
    c.add_argument("text")
    c.add_argument("--policy", help="default: the active policy, else default")
    c.add_argument("--output", action="store_true", help="run the output rail instead of the input rail")
    c.set_defaults(func=_check)

    ls = gsub.add_parser("list", help="built-in and saved policies")
    ls.set_defaults(func=lambda a: _print_bundle(_guard().list_policies()))
    sh = gsub.add_parser("show", help="a policy's YAML")
    sh.add_argument("name")
    sh.set_defaults(func=lambda a: print(_guard().show(a.name)) or 0)
    on = gsub.add_parser("on", help="apply a policy to every call in this workspace")
    on.add_argument("name")
    on.set_defaults(func=lambda a: _print_bundle(_guard().on(a.name)))
    off = gsub.add_parser("off", help="stop guarding calls")
    off.set_defaults(func=lambda a: _print_bundle(_guard().off()))
    st = gsub.add_parser("status", help="the active policy")
    st.set_defaults(func=lambda a: _print_bundle(_guard().status()))


def _guard():  # imported on use: `cellops --help` stays fast
    from ..kernels_lib import guard

    return guard


def _print_bundle(obj: object) -> int:
    print(obj._repr_mimebundle_()["text/plain"])  # type: ignore[attr-defined]
    return 0


def _policy_arg(policy: str) -> str:
    from pathlib import Path

    p = Path(policy)
    return p.read_text(encoding="utf-8") if policy.endswith((".yaml", ".yml")) and p.is_file() else policy


def _eval(a: argparse.Namespace) -> int:
    res = _guard().evaluate(_policy_arg(a.policy), a.data, rail=a.rail, limit=a.limit)
    if a.json:
        print(json.dumps(res.to_dict(), indent=2, default=str))
        return 0
    print(repr(res))
    for err in res.errors[: a.errors]:
        print("  x", json.dumps(err, ensure_ascii=False)[:200])
    if res.run_id:
        print(f"recorded as run {res.run_id}")
    return 0


def _check(a: argparse.Namespace) -> int:
    pol = _policy_arg(a.policy) if a.policy else None
    rep = _guard().check(a.text, output=a.output, policy=pol)
    print(rep._repr_mimebundle_()["text/plain"])
    print("sent as:", rep.text) if rep.redacted else None
    return 0 if rep.allowed else 3
