"""%%synth NAME --from DATASET --n N [--model URI]: self-instruct synthetic data as a dataset version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..kernels_lib import datasets
from .context import MagicArgumentParser, MagicContext

parser = MagicArgumentParser(prog="%%synth")
parser.add_argument("name", help="the dataset to save the generated rows as")
parser.add_argument("--from", dest="seed", required=True, metavar="DATASET",
                    help="seed tasks: a dataset NAME@V, a file, or a notebook variable")
parser.add_argument("--n", type=int, required=True, help="rows wanted (at most 4n attempts)")
parser.add_argument("--model", help="generator model URI (default: %%config Cellops.model)")
parser.add_argument("--judge", metavar="URI", help="also keep only rows this model grades PASS")
parser.add_argument("--max-tokens", type=int, default=128)
parser.add_argument("--temperature", type=float, default=0.8)
parser.add_argument("--seed", dest="rng_seed", type=int, default=0, help="sampling seed")
parser.add_argument("-o", "--output", metavar="VAR", help="store the DatasetVersion in VAR")

HELP = f"""Synthetic instruction data (self-instruct) from seed tasks, saved as a dataset version.

{parser.format_usage().strip()}
  Each attempt shows the model a few seed tasks and asks for a new one, then answers it.
  Filters: format, length, near-duplicates (ROUGE-L >= 0.7 against seeds and kept tasks), the
  guard policy (active, else default), and with --judge an llm-rubric grade. The card records the
  generator, the prompt version, the filters and how many rows each rejected. The body is unused.
Python: cellops.datasets.synthesize(name, seed=..., n=..., model=...).
"""


@dataclass(frozen=True)
class SynthArgs:
    name: str
    seed: Any
    n: int
    model: str | None
    judge: str | None
    max_tokens: int
    temperature: float
    rng_seed: int
    output: str | None


def parse(ctx: MagicContext, line: str) -> SynthArgs:
    a = parser.parse_line(line)
    seed = ctx.user_ns[a.seed] if a.seed.isidentifier() and a.seed in ctx.user_ns else a.seed
    return SynthArgs(a.name, seed, a.n, a.model, a.judge, a.max_tokens,
                     a.temperature, a.rng_seed, a.output)


def run(ctx: MagicContext, line: str, cell_body: str | None) -> Any:
    from ..widgets.rag_progress import progress_bar

    a = parse(ctx, line)
    bar = progress_bar(ctx.live, "generating", "rows")
    try:
        v = datasets.synthesize(a.name, seed=a.seed, n=a.n, model=a.model, judge=a.judge,
                                max_tokens=a.max_tokens, temperature=a.temperature,
                                rng_seed=a.rng_seed, progress=bar, workspace=ctx.workspace,
                                source="magic")
    finally:
        bar.close()
    ctx.store(a.output, v)
    return v
