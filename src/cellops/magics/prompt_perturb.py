"""%prompt perturb NAME --on CASES --kinds ...: the robustness table of a prompt version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..kernels_lib.prompts.perturb import KINDS
from ..kernels_lib.prompts.perturb import perturb as run_perturb
from .context import MagicArgumentParser, MagicContext

parser = MagicArgumentParser(prog="%prompt perturb")
parser.add_argument("ref", metavar="NAME[@V]")
parser.add_argument("--on", metavar="CASES", help="cases with assertions (default: the stored tests)")
parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated: {','.join(KINDS)}")
parser.add_argument("--model", help="model URI (default: the prompt's model)")
parser.add_argument("--paraphrase-model", default="default", help="model that writes paraphrases")
parser.add_argument("--seed", type=int, default=0, help="perturbation seed (same seed, same suite)")
parser.add_argument("--no-cache", action="store_true")
parser.add_argument("-o", "--output", metavar="VAR", help="store the DataFrame in VAR")


@dataclass(frozen=True)
class PerturbArgs:
    ref: str
    on: Any
    kinds: str
    model: str | None
    paraphrase_model: str
    seed: int
    cache: bool
    output: str | None


def parse(ctx: MagicContext, rest: str) -> PerturbArgs:
    from .prompt_loop import _source

    a = parser.parse_line(rest)
    return PerturbArgs(a.ref, _source(ctx, a.on) if a.on else None, a.kinds, a.model,
                       a.paraphrase_model, a.seed, not a.no_cache, a.output)


def perturb(ctx: MagicContext, rest: str) -> Any:
    from ..widgets.trace_view import live_trace_view

    a = parse(ctx, rest)
    waterfall = live_trace_view(ctx.live)  # a span per perturbed case fills in as the workers run
    df = run_perturb(a.ref, a.on, kinds=a.kinds, model=a.model, seed=a.seed,
                     paraphrase_model=a.paraphrase_model, cache=a.cache, workspace=ctx.workspace,
                     source="magic", on_trace=waterfall)
    if waterfall is not None:
        waterfall.settle()
    ctx.store(a.output, df)
    return df
