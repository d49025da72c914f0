"""``cellops dataset list|show|card``: the workspace's dataset versions."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="dataset versions: list, show rows, card")
    cmds = p.add_subparsers(dest="dataset_command", metavar="list|show|card", required=True)
    ls = cmds.add_parser("list", help="latest version of every dataset (or one dataset's history)")
    ls.add_argument("name", nargs="?")
    ls.set_defaults(func=_list)
    show = cmds.add_parser("show", help="the first rows of a version, as JSON Lines")
    show.add_argument("ref", metavar="NAME[@V][:SPLIT]")
    show.add_argument("-n", type=int, default=10, help="rows to print (0: all)")
    show.set_defaults(func=_show)
    card = cmds.add_parser("card", help="the dataset card")
    card.add_argument("ref", metavar="NAME[@V]")
    card.add_argument("--json", action="store_true", help="the card as JSON")
    card.set_defaults(func=_card)


def _list(args: argparse.Namespace) -> int:
    from ..kernels_lib import datasets, html

    items = datasets.history(args.name) if args.name else datasets.list_datasets()
    rows = [(d.ref, d.hash[:12], d.format, d.version.content["rows"], ", ".join(d.version.aliases))
            for d in items]
    print(html.text_table(("dataset", "hash", "format", "rows", "aliases"), rows) if rows else "(no datasets yet)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from ..kernels_lib import datasets

    recs = datasets.get(args.ref).records()
    for r in recs[: args.n] if args.n > 0 else recs:
        print(json.dumps(r, ensure_ascii=False))
    return 0


def _card(args: argparse.Namespace) -> int:
    from ..kernels_lib import datasets

    d = datasets.get(args.ref)
    print(json.dumps(d.card, indent=1, ensure_ascii=False) if args.json
          else d._repr_mimebundle_()["text/plain"])
    return 0
