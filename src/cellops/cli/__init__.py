"""The ``cellops`` command: a thin client of kernels_lib.

Each area adds its subcommands from its own module (``cli/<area>.py`` with ``register(sub)``);
a command handler returns an exit code. CellopsErrors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..kernels_lib.errors import CellopsError

AREAS = ("quickstart", "prompts", "pipelines", "guard", "rag", "finetune", "chain", "datasets", "serve",
         "monitor", "models")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cellops", description="LLMOps inside Jupyter")
    parser.add_argument("--workspace", help="workspace folder (default: CELLOPS_HOME or ./.cellops)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        importlib.import_module(f"{__name__}.{area}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if args.workspace:
        import os

        os.environ["CELLOPS_HOME"] = args.workspace
    try:
        return int(args.func(args) or 0)
    except CellopsError as e:
        print(f"cellops: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cellops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
