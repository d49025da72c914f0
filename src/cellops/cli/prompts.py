"""``cellops prompts``: list prompt versions in the workspace."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompts", help="list prompts (latest versions) or one prompt's history")
    p.add_argument("name", nargs="?", help="show every version of this prompt")
    p.set_defaults(func=_prompts)


def _prompts(args: argparse.Namespace) -> int:
    from ..kernels_lib import html, prompts

    items = prompts.history(args.name) if args.name else prompts.list_prompts()
    rows = [(p.ref, p.hash[:10], ", ".join(p.aliases), p.template[:50].replace("\n", " ")) for p in items]
    print(html.text_table(("prompt", "hash", "aliases", "template"), rows) if rows else "(no prompts yet)")
    return 0
