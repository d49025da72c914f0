"""%serve start|stop|list|logs: a served app as a detached process that outlives the kernel."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from ..cli.serve import add_serve_args
from ..kernels_lib.serving import ServeConfig, procs
from .context import MagicArgumentParser, MagicContext
from .views import TextView

start_parser = MagicArgumentParser(prog="%serve start")
add_serve_args(start_parser)
start_parser.set_defaults(port=0)  # a free port unless --port says otherwise
name_parser = MagicArgumentParser(prog="%serve")
name_parser.add_argument("name")
name_parser.add_argument("-n", "--lines", type=int, default=40)

HELP = f"""Serve a prompt, RAG app or chain over an OpenAI-compatible API, from a cell.

  {start_parser.format_usage().strip().replace('usage: ', '')}
      starts `cellops serve` as a detached process (it survives kernel restarts) and returns
      once it answers; the chat page is at its URL. Same flags as `cellops serve`.
  %serve stop NAME       stop it (in-flight requests finish first)
  %serve list            name, status, URL, target, pid, uptime, requests
  %serve logs NAME [-n LINES]
"""


def run(ctx: MagicContext, line: str, cell: str | None) -> Any:
    command, _, rest = line.strip().partition(" ")
    if command == "start":
        a = start_parser.parse_line(rest)
        from ..cli.serve import config_from

        cfg: ServeConfig = config_from(a, str(ctx.workspace.root))  # type: ignore[assignment]
        return procs.start(cfg, ctx.workspace)
    if command == "list":
        return procs.listing(ctx.workspace)
    if command in ("stop", "logs"):
        a = name_parser.parse_line(rest)
        if command == "stop":
            s = procs.stop(a.name, ctx.workspace)
            return TextView(f"server {s.name} stopped (pid {s.pid})")
        return TextView(procs.logs(a.name, a.lines, ctx.workspace))
    raise UsageError("usage: %serve start TARGET [...] | stop NAME | list | logs NAME. Try %serve? for help")
