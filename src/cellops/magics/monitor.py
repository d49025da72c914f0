"""%monitor NAME [--since 1h]: a served app's dashboard (traffic, latency, drift, A/B)."""

from __future__ import annotations

from typing import Any

from ..kernels_lib import monitoring
from .context import MagicArgumentParser, MagicContext

parser = MagicArgumentParser(prog="%monitor")
parser.add_argument("name", help="the served app")
parser.add_argument("--since", help="only requests since: 30m, 2h, 1d, an ISO date or a unix time")
parser.add_argument("--reference", type=int, default=50, help="drift reference: the first N requests")
parser.add_argument("--window", type=int, help="drift current window: the last N requests")
parser.add_argument("-o", "--output", metavar="VAR", help="store the dashboard (its .data are the figures) in VAR")

HELP = f"""A served app's dashboard: traffic, latency p50/p95, error and guard-block rates, tokens,
feedback per variant, input/output drift (reference: the first N requests) and the A/B verdict.

  {parser.format_usage().strip().replace('usage: ', '')}
Alerts on the same figures: `cellops monitor check NAME --rules rules.yaml --on-alert CMD`.
"""


def run(ctx: MagicContext, line: str, cell: str | None) -> Any:
    a = parser.parse_line(line)
    board = monitoring.monitor(a.name, monitoring.parse_since(a.since), a.reference, a.window,
                               workspace=ctx.workspace)
    ctx.store(a.output, board)
    return board
