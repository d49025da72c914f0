"""%trace list | show | diff | status: the traces every call leaves in the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from ..kernels_lib.tracking import diff as trace_diff
from ..kernels_lib.tracking import otel, traces
from .context import MagicArgumentParser, MagicContext
from .views import TextView

list_parser = MagicArgumentParser(prog="%trace list")
list_parser.add_argument("--name", help="root name: exact, its first word (prompt, rag, pipeline) or a glob")
list_parser.add_argument("--last", type=int, default=20, metavar="K", help="how many (newest first)")
list_parser.add_argument("--status", choices=("ok", "error", "unset"))
list_parser.add_argument("--since", help="an age (30m, 2h, 1d) or an ISO date")
list_parser.add_argument("-o", "--output", metavar="VAR")

show_parser = MagicArgumentParser(prog="%trace show")
show_parser.add_argument("id", help="trace id (or a unique prefix, or a run id)")
show_parser.add_argument("-o", "--output", metavar="VAR")

diff_parser = MagicArgumentParser(prog="%trace diff")
diff_parser.add_argument("a")
diff_parser.add_argument("b")
diff_parser.add_argument("-o", "--output", metavar="VAR")

HELP = f"""Traces: one per %%prompt, %%rag ask, compare grid, chain, pipeline and fine-tune launch.

  {list_parser.format_usage().strip()}
  {show_parser.format_usage().strip()}   (the waterfall: click a span for its details)
  {diff_parser.format_usage().strip()}   (steps side by side: latency, tokens, outputs)
  %trace status   (where spans are exported: %config Cellops.otlp_endpoint = "http://host:4318")
Python: cellops.traces.get(ID), cellops.traces.search(name=, since=, status=, limit=).
"""


@dataclass(frozen=True)
class TraceArgs:
    command: str
    ids: tuple[str, ...] = ()
    name: str | None = None
    last: int = 20
    status: str | None = None
    since: str | None = None
    output: str | None = None


def parse(line: str) -> TraceArgs:
    cmd, _, rest = line.strip().partition(" ")
    if cmd in ("", "list"):
        a = list_parser.parse_line(rest)
        return TraceArgs("list", (), a.name, a.last, a.status, a.since, a.output)
    if cmd == "show":
        a = show_parser.parse_line(rest)
        return TraceArgs("show", (a.id,), output=a.output)
    if cmd == "diff":
        a = diff_parser.parse_line(rest)
        return TraceArgs("diff", (a.a, a.b), output=a.output)
    if cmd == "status":
        return TraceArgs("status")
    raise UsageError(f"unknown %trace command '{cmd}'; use list, show, diff or status")


def run(ctx: MagicContext, line: str, cell: str | None) -> Any:
    if cell is not None:
        raise UsageError("%trace is a line magic: %trace list | show ID | diff A B | status")
    a = parse(line)
    ws = ctx.workspace
    if a.command == "list":
        result: Any = traces.search(a.name, a.since, a.status, a.last, workspace=ws)
    elif a.command == "show":
        result = traces.get(a.ids[0], ws)
    elif a.command == "diff":
        result = trace_diff.diff(a.ids[0], a.ids[1], ws)
    else:
        s = otel.status()
        result = TextView(f"export: {s['endpoint'] or 'off (spans stay in the workspace)'}; "
                          f"{s['exported']} spans sent, {s['failed']} failed"
                          + (f"; last error: {s['last_error']}" if s["last_error"] else ""))
    ctx.store(a.output, result)
    return result
