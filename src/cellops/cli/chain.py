"""``cellops chain``: run and list chains from the shell (the same code as %chain).

Python steps resolve ``module:function`` here (there is no notebook namespace).
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chain", help="chains: run, list")
    csub = p.add_subparsers(dest="chain_command", metavar="COMMAND", required=True)
    r = csub.add_parser("run", help="run a chain version and print its output")
    r.add_argument("ref", metavar="NAME[@V]")
    r.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="an input; repeatable")
    r.add_argument("--model", help="model of the model steps that name none")
    r.add_argument("--no-cache", action="store_true")
    r.add_argument("--json", action="store_true", help="print output, steps, trace_id and run_id as JSON")
    r.set_defaults(func=_run)
    t = csub.add_parser("trust", help="vouch for the Python functions a chain version imports "
                        "(a chain from a cloned workspace runs none until then)")
    t.add_argument("ref", metavar="NAME@V")
    t.set_defaults(func=_trust)
    ls = csub.add_parser("list", help="latest version of each chain, or one chain's history")
    ls.add_argument("name", nargs="?")
    ls.set_defaults(func=_list)


def _params(pairs: list[str] | None) -> dict[str, object]:
    import ast

    from ..kernels_lib.errors import InvalidInputError

    out: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InvalidInputError(f"malformed -p '{pair}': use -p name=value")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def _run(args: argparse.Namespace) -> int:
    from ..kernels_lib import chains
    from ..kernels_lib.chains.context import as_text

    r = chains.run(args.ref, _params(args.param), args.model, cache=not args.no_cache, source="cli")
    if args.json:
        print(json.dumps({"chain": r.chain, "status": r.status, "output": r.output, "steps": r.steps,
                          "trace_id": r.trace_id, "run_id": r.run_id}, default=str))
    else:
        print(as_text(r.output))
        print(f"[{r.summary()}]")
    return 0 if r.status == "ok" else 1


def _trust(args: argparse.Namespace) -> int:
    from ..kernels_lib.chains.store import imports, trust_version

    chain = trust_version(args.ref)
    print(f"chain {chain.ref} trusted: it may import {', '.join(imports(chain)) or 'nothing'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..kernels_lib import chains

    items = chains.history(args.name) if args.name else chains.list_chains()
    print(chains.ChainList(items)._repr_mimebundle_()["text/plain"])
    return 0
