"""%%chain NAME: save a versioned YAML chain (and run it with -p/--run);
%chain run|test|compare|list|show|history|alias."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from ..kernels_lib import chains, env
from .context import MagicArgumentParser, MagicContext, parse_kv
from .views import TextView

cell_parser = MagicArgumentParser(prog="%%chain")
cell_parser.add_argument("name")
cell_parser.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="an input; runs the chain")
cell_parser.add_argument("--run", action="store_true", help="run it after saving (inputs from -p and the notebook)")
cell_parser.add_argument("--model", help="model of the model steps that name none")
cell_parser.add_argument("-o", "--output", metavar="VAR", help="store the run (or the chain) in VAR")

run_parser = MagicArgumentParser(prog="%chain run")
run_parser.add_argument("ref", metavar="NAME[@V]")
run_parser.add_argument("-p", "--param", action="append", metavar="KEY=VALUE")
run_parser.add_argument("--model")
run_parser.add_argument("--no-cache", action="store_true")
run_parser.add_argument("-o", "--output", metavar="VAR")

test_parser = MagicArgumentParser(prog="%chain test")
test_parser.add_argument("ref", metavar="NAME[@V]")
test_parser.add_argument("--tests", metavar="FILE|VAR", help="cases instead of the spec's tests:")
test_parser.add_argument("--model")
test_parser.add_argument("--no-cache", action="store_true")
test_parser.add_argument("--raise", dest="raise_", action="store_true",
                         help="raise on failure (automatic in a papermill run: CELLOPS_BATCH=1)")
test_parser.add_argument("-o", "--output", metavar="VAR")

compare_parser = MagicArgumentParser(prog="%chain compare")
compare_parser.add_argument("refs", nargs="+", metavar="NAME@V")
compare_parser.add_argument("--models", help="comma-separated model URIs")
compare_parser.add_argument("--on", required=True, metavar="CASES", help="a .jsonl/.csv/.yaml file or a variable")
compare_parser.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="an input shared by every case")
compare_parser.add_argument("--no-cache", action="store_true")
compare_parser.add_argument("-o", "--output", metavar="VAR", help="store the grid as a DataFrame")

HELP = f"""Multi-step chains (prompt, rag, guard, generate, python, tool, map steps) as versioned YAML.

Cell:  {cell_parser.format_usage().strip()}
  The body is YAML: inputs, steps (NAME: {{TYPE: ..., ...}}), output, tests. Steps read
  {{{{ inputs.x }}}} and {{{{ steps.NAME.output }}}}; python steps may name notebook functions.
  Saving validates everything first; -p or --run also runs it. Reference: docs/chains.md.
Line:  %chain run NAME[@V] [-p k=v ...] [--model URI] [--no-cache] [-o VAR]
       %chain test NAME[@V] [--tests FILE|VAR] [--model URI] [--raise]
       %chain compare NAME@A NAME@B [--models URI,URI] --on CASES [-o VAR]
       %chain list | show NAME[@V] | history NAME | alias NAME@V ALIAS
"""


@dataclass(frozen=True)
class RunArgs:
    ref: str
    inputs: dict[str, Any]
    model: str | None
    cache: bool
    output: str | None


def _inputs(ctx: MagicContext, chain: chains.Chain, given: dict[str, Any]) -> dict[str, Any]:
    """Inputs: -p values win over notebook variables named like the chain's inputs."""
    names = set(chain.spec.inputs) | set(chain.spec.required)
    return {n: ctx.user_ns[n] for n in names if n in ctx.user_ns} | given


def execute(ctx: MagicContext, a: RunArgs) -> Any:
    from ..widgets.trace_view import live_trace_view

    chain = chains.get(a.ref, ctx.workspace)
    view = live_trace_view(ctx.live)  # fills in while the chain runs
    result = chains.run(chain, _inputs(ctx, chain, a.inputs), a.model,
                        workspace=ctx.workspace, resolver=chains.namespace_resolver(ctx.user_ns),
                        cache=a.cache, source="magic", on_trace=view)
    if view is not None:  # the result shows the same waterfall as static HTML; a failed run keeps the live one
        view.close()
    ctx.store(a.output, result)
    return result


def cell(ctx: MagicContext, line: str, body: str) -> Any:
    a = cell_parser.parse_line(line)
    if not body.strip():
        raise UsageError("%%chain needs a YAML body with 'steps:'; see %%chain? or docs/chains.md")
    version, created = chains.save(a.name, body, ctx.workspace)
    chain = chains.get(f"{a.name}@{version}", ctx.workspace)
    if a.param or a.run:
        return execute(ctx, RunArgs(chain.ref, parse_kv(a.param), a.model, True, a.output))
    ctx.store(a.output, chain)
    state = "saved new version" if created else "unchanged, still"
    return TextView(f"{state} {chain.ref} (hash {chain.hash[:10]}); run it with "
                    f"%chain run {chain.ref}" + "".join(f" -p {n}=..." for n in chain.spec.required))


def _source(ctx: MagicContext, value: str) -> Any:
    from .prompt_loop import _source as source

    return source(ctx, value)


def line_command(ctx: MagicContext, line: str) -> Any:
    words = line.split(None, 1)
    cmd, rest = (words[0], words[1] if len(words) > 1 else "") if words else ("", "")
    ws = ctx.workspace
    if cmd == "run":
        r = run_parser.parse_line(rest)
        return execute(ctx, RunArgs(r.ref, parse_kv(r.param), r.model, not r.no_cache, r.output))
    if cmd == "test":
        return _test(ctx, rest)
    if cmd == "compare":
        return _compare(ctx, rest)
    if cmd == "list":
        return chains.ChainList(chains.list_chains(ws))
    if cmd == "history" and rest.strip():
        versions = chains.history(rest.strip(), ws)
        if not versions:
            raise UsageError(f"no saved chain named '{rest.strip()}'; %chain list shows the saved ones")
        return chains.ChainList(versions)
    if cmd == "show" and rest.strip():
        c = chains.get(rest.strip(), ws)
        return TextView(f"{c.ref}  hash {c.hash[:10]}  aliases {', '.join(c.aliases) or '-'}\n\n{c.yaml}")
    if cmd == "alias" and len(rest.split()) == 2:
        c = chains.alias(*rest.split(), workspace=ws)
        return TextView(f"{c.ref} is now also {rest.split()[1]}")
    raise UsageError("usage: %chain run NAME[@V] [-p k=v] | test NAME | compare A B --on CASES | "
                     "list | show NAME[@V] | history NAME | alias NAME@V ALIAS")


def _test(ctx: MagicContext, rest: str) -> Any:
    from ..widgets.trace_view import live_trace_view

    a = test_parser.parse_line(rest)
    waterfall = live_trace_view(ctx.live)  # each case's chain run fills in as it runs
    try:
        report = chains.test(a.ref, _source(ctx, a.tests) if a.tests else None, model=a.model,
                             raise_on_failure=a.raise_ or env.batch(),
                             cache=not a.no_cache, workspace=ctx.workspace,
                             resolver=chains.namespace_resolver(ctx.user_ns), source="magic",
                             on_trace=waterfall)
    finally:
        if waterfall is not None:
            waterfall.settle()
    ctx.store(a.output, report)
    return report


def _compare(ctx: MagicContext, rest: str) -> Any:
    from ..widgets.trace_view import live_trace_view

    a = compare_parser.parse_line(rest)
    models = [m.strip() for m in a.models.split(",") if m.strip()] if a.models else None
    waterfall = live_trace_view(ctx.live)  # each cell's chain run fills in as it runs
    grid = chains.compare_grid(a.refs, models, _source(ctx, a.on), variables=parse_kv(a.param),
                               cache=not a.no_cache, workspace=ctx.workspace,
                               resolver=chains.namespace_resolver(ctx.user_ns), source="magic",
                               on_trace=waterfall)
    if waterfall is not None:
        waterfall.settle()
    ctx.store(a.output, grid.to_frame() if a.output else None)
    return grid


def run(ctx: MagicContext, line: str, cell_body: str | None) -> Any:
    return line_command(ctx, line) if cell_body is None else cell(ctx, line, cell_body)
