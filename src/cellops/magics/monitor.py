"""%monitor NAME [--since 1h]: a served app's dashboard (traffic, latency, drift, A/B)."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from ..kernels_lib import monitoring
from .context import MagicArgumentParser, MagicContext

parser = MagicArgumentParser(prog="%monitor")
parser.add_argument("name", help="the served app")
parser.add_argument("--since", help="only requests since: 30m, 2h, 1d, an ISO date or a unix time")
parser.add_argument("--reference", default="50", help="drift reference: the first N requests, or a dataset "
                    "version NAME@V[:SPLIT] (its inputs)")
parser.add_argument("--window", type=int, help="drift current window: the last N requests")
parser.add_argument("--every", type=float, default=5.0, help="live view: seconds between checks for new traffic")
parser.add_argument("--live-for", type=float, default=600.0, help="live view: stop refreshing after this many seconds")
parser.add_argument("--static", action="store_true", help="no live view: the static dashboard only")
parser.add_argument("-o", "--output", metavar="VAR", help="store the dashboard (its .data are the figures) in VAR")

HELP = f"""A served app's dashboard: traffic, latency p50/p95, error and guard-block rates, tokens,
feedback per variant, input/output drift (reference: the first N requests or a dataset version
NAME@V[:SPLIT]) and the A/B verdict.

  {parser.format_usage().strip().replace('usage: ', '')}
In a live notebook the dashboard refreshes itself (every --every s while requests arrive, for
--live-for s; re-running the cell restarts it); elsewhere it is the static HTML.
Alerts on the same figures: `cellops monitor check NAME --rules rules.yaml --on-alert CMD`.
"""


def run(ctx: MagicContext, line: str, cell: str | None) -> Any:
    a = parser.parse_line(line)
    if a.every <= 0 or a.live_for <= 0:
        raise UsageError("--every and --live-for take a number of seconds above 0")
    ws, since, reference = ctx.workspace, monitoring.parse_since(a.since), monitoring.parse_reference(a.reference)

    def board() -> Any:
        return monitoring.monitor(a.name, since, reference, a.window, workspace=ws)

    if not ctx.live or a.static:  # papermill, nbconvert, a terminal: the static HTML
        out = board()
        ctx.store(a.output, out)
        return out
    from ..kernels_lib.serving import records
    from ..widgets.monitor_view import LiveMonitor

    view = LiveMonitor(a.name, board, lambda: records.count(ws, a.name), a.every, a.live_for).start()
    ctx.store(a.output, view.dashboard)
    return view
