"""%prompt compare | test | optimize | alias | feedback | cache: the prompt engineering loop's line commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from ..kernels_lib import env, prompts
from ..kernels_lib.prompts import assertions, feedback
from ..kernels_lib.prompts.cases import load_cases
from .context import MagicArgumentParser, MagicContext, parse_kv
from .views import TextView

compare_parser = MagicArgumentParser(prog="%prompt compare")
compare_parser.add_argument("refs", nargs="+", metavar="NAME@V")
compare_parser.add_argument("--models", help="comma-separated model URIs (default: each prompt's model)")
compare_parser.add_argument("--on", required=True, metavar="CASES",
                            help="a .jsonl/.csv/.yaml file, a dataset NAME@V, or a DataFrame / list variable")
compare_parser.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                            help="a variable shared by every case")
compare_parser.add_argument("--max-tokens", type=int)
compare_parser.add_argument("--temperature", type=float)
compare_parser.add_argument("--seed", type=int)
compare_parser.add_argument("--workers", type=int, default=4, help="parallel calls per HTTP endpoint")
compare_parser.add_argument("--no-cache", action="store_true", help="call the models even when cached")
compare_parser.add_argument("-o", "--output", metavar="VAR", help="store the grid as a DataFrame")

test_parser = MagicArgumentParser(prog="%prompt test")
test_parser.add_argument("ref", metavar="NAME[@V]")
test_parser.add_argument("--tests", "--on", dest="tests", metavar="CASES",
                         help="cases instead of the stored ones: a file, a dataset NAME@V or a variable")
test_parser.add_argument("--model", help="model URI (default: the prompt's model)")
test_parser.add_argument("--no-cache", action="store_true")
test_parser.add_argument("--raise", dest="raise_", action="store_true",
                         help="raise on failure (automatic in a papermill run: CELLOPS_BATCH=1)")
test_parser.add_argument("-o", "--output", metavar="VAR", help="store the TestReport")

optimize_parser = MagicArgumentParser(prog="%prompt optimize")
optimize_parser.add_argument("ref", metavar="NAME[@V]")
optimize_parser.add_argument("--on", metavar="CASES", help="cases with assertions (default: the stored ones)")
optimize_parser.add_argument("--search", default="system,fewshot,params",
                             help="comma list of system, fewshot, params, model")
optimize_parser.add_argument("--budget", type=int, default=40, help="model calls, all included")
optimize_parser.add_argument("--tokens", type=int, help="token budget (default: none)")
optimize_parser.add_argument("--seconds", type=float, help="time budget (default: none)")
optimize_parser.add_argument("--holdout", type=float, default=0.3, help="held-out fraction reported on")
optimize_parser.add_argument("--models", help="candidate model URIs for --search model")
optimize_parser.add_argument("--proposer", help="model URI that proposes system prompts")
optimize_parser.add_argument("--seed", type=int, default=0)
optimize_parser.add_argument("--no-cache", action="store_true")
optimize_parser.add_argument("-o", "--output", metavar="VAR", help="store the OptimizeResult")

export_parser = MagicArgumentParser(prog="%prompt feedback export")
export_parser.add_argument("name")
export_parser.add_argument("file")
export_parser.add_argument("--format", choices=feedback.FORMATS, default="sft")

USAGE = {
    "compare": compare_parser.format_usage().strip(),
    "test": test_parser.format_usage().strip(),
    "optimize": optimize_parser.format_usage().strip(),
    "alias": "usage: %prompt alias NAME@V ALIAS   (then NAME@ALIAS works everywhere)",
    "feedback": ("usage: %prompt feedback RUN[:CASE:COLUMN] up|down [COMMENT] | feedback list [NAME] | "
                 "feedback export NAME FILE.jsonl --format sft|preference"),
    "cache": "usage: %prompt cache [stats | clear [MODEL_URI]]",
    "perturb": "usage: %prompt perturb NAME[@V] --on CASES --kinds typos,case,... [--model URI] [--seed N]",
}


def _source(ctx: MagicContext, value: str) -> Any:
    """A notebook variable of that name, else a file path or a saved dataset (NAME@V)."""
    from ..kernels_lib.datasets import find

    if value.isidentifier() and value in ctx.user_ns:
        return ctx.user_ns[value]
    if Path(value).expanduser().exists() or find(value, ctx.workspace) is not None:
        return value
    raise UsageError(f"no notebook variable, file or dataset named '{value}'; pass a .jsonl/.csv/.yaml "
                     "path, a dataset NAME@V or the name of a DataFrame / list variable")


def compare(ctx: MagicContext, rest: str) -> Any:
    from ..kernels_lib.prompts.compare import prepare, run_plan

    a = compare_parser.parse_line(rest)
    models = [m.strip() for m in a.models.split(",") if m.strip()] if a.models else None
    params = {k: v for k, v in {"max_tokens": a.max_tokens, "temperature": a.temperature,
                                "seed": a.seed}.items() if v is not None}
    plan = prepare(a.refs, models, _source(ctx, a.on), params=params, variables=parse_kv(a.param),
                   cache=not a.no_cache, workers=a.workers, workspace=ctx.workspace)
    result = _run_live(ctx, plan) if ctx.live else run_plan(plan, source="magic")
    ctx.store(a.output, result.to_frame())
    return None if ctx.live else result  # live: the grid widget is already on screen


def _run_live(ctx: MagicContext, plan: Any) -> Any:
    """Run the grid behind a widget that fills in cell by cell, then leave its static table."""
    from IPython.display import display

    from ..kernels_lib.prompts.compare import run_plan
    from ..widgets.compare_grid import CompareGridView
    from ..widgets.trace_view import live_trace_view

    view = CompareGridView(plan.columns, plan.cases, ctx.workspace)
    handle = display(view, display_id=True)
    waterfall = live_trace_view(ctx.live)  # a span per grid cell fills in as the workers run
    result = run_plan(plan, on_cell=view.update, source="magic", on_trace=waterfall)
    if waterfall is not None:
        waterfall.settle()
    view.finish(result)
    handle.update(view)  # the saved notebook keeps the static table next to the widget
    return result


def test(ctx: MagicContext, rest: str) -> Any:
    a = test_parser.parse_line(rest)
    cases = _source(ctx, a.tests) if a.tests else None
    batch = env.batch()
    from ..widgets.trace_view import live_trace_view

    waterfall = live_trace_view(ctx.live)  # a span per case fills in as the workers run
    report = prompts.test(a.ref, cases, model=a.model, cache=not a.no_cache,
                          workspace=ctx.workspace, source="magic", on_trace=waterfall)
    if waterfall is not None:
        waterfall.settle()
    ctx.store(a.output, report)
    if not report.ok and (a.raise_ or batch):
        from IPython.display import display

        display(report)  # the table stays in the executed notebook, above the error
        raise prompts.PromptTestFailed(report.failure_line(), report)
    return report


def optimize(ctx: MagicContext, rest: str) -> Any:
    a = optimize_parser.parse_line(rest)
    budget = {"calls": a.budget, "tokens": a.tokens, "seconds": a.seconds}
    models = [m.strip() for m in a.models.split(",") if m.strip()] if a.models else None
    progress: Any = True
    if ctx.live:  # a notebook bar instead of text on stderr
        from tqdm.auto import tqdm

        bar = tqdm(total=a.budget, desc="optimize", unit="call")

        def progress(done: int, _total: int, status: str) -> None:
            bar.update(done - bar.n)
            bar.set_postfix_str(status)

    result = prompts.optimize(a.ref, _source(ctx, a.on) if a.on else None, search=a.search, budget=budget,
                              holdout=a.holdout, models=models, proposer=a.proposer, seed=a.seed,
                              cache=not a.no_cache, progress=progress, workspace=ctx.workspace,
                              source="magic")
    ctx.store(a.output, result)
    return result


def alias(ctx: MagicContext, rest: str) -> Any:
    words = rest.split()
    if len(words) != 2 or "@" not in words[0]:
        raise UsageError(USAGE["alias"])
    p = prompts.alias(words[0], words[1], ctx.workspace)
    return TextView(f"{p.name}@{words[1]} -> {p.ref} (aliases of {p.ref}: {', '.join(p.aliases)})")


def feedback_cmd(ctx: MagicContext, rest: str) -> Any:
    words = rest.split(None, 2)
    if not words:
        raise UsageError(USAGE["feedback"])
    ws = ctx.workspace
    if words[0] == "export":
        a = export_parser.parse_line(rest.split(None, 1)[1] if len(words) > 1 else "")
        return feedback.export(a.name, a.format, a.file, ws)
    if words[0] == "list":
        items = feedback.list_feedback(words[1] if len(words) > 1 else None, ws)
        if not items:
            return TextView("(no ratings yet)")
        return TextView("\n".join(
            f"{'+1' if i['rating'] > 0 else '-1'}  {i['prompt']} · {i['model']} · run {i['run_id']}"
            f"{':' + i['cell'] if i['cell'] else ''}  {i['comment']}" for i in items))
    if len(words) < 2:
        raise UsageError(USAGE["feedback"])
    run_id, _, cell = words[0].partition(":")
    row = feedback.rate(run_id, words[1], words[2] if len(words) > 2 else "", cell or None, ws)
    return TextView(f"rated {'up' if row['rating'] > 0 else 'down'}: {row['prompt']} · {row['model']} "
                    f"(run {row['run_id']}{':' + cell if cell else ''})")


def cache_cmd(ctx: MagicContext, rest: str) -> Any:
    words = rest.split()
    if not words or words[0] == "stats":
        s = prompts.cache_stats(ctx.workspace)
        lines = [f"{m}: {v['entries']} responses ({v['bytes'] / 1024:.1f} KiB)" for m, v in s.items()]
        return TextView("\n".join(lines) or "(cache is empty)")
    if words[0] == "clear" and len(words) <= 2:
        n = prompts.clear_cache(words[1] if len(words) > 1 else None, ctx.workspace)
        return TextView(f"deleted {n} cached responses")
    raise UsageError(USAGE["cache"])


def check_tests(source: Any) -> list[dict[str, Any]]:
    """Validate test cases (shape + every assertion); returns them as plain dicts to store."""
    cases = load_cases(source)
    assertions.validate_cases(cases)
    return [{"vars": c.vars, "assert": c.asserts, **({"description": c.description} if c.description else {})}
            for c in cases]


def read_tests(ctx: MagicContext, source: str) -> list[dict[str, Any]]:
    """--tests FILE|VAR for %%prompt: the cases to store with the version."""
    return check_tests(_source(ctx, source))


def perturb_cmd(ctx: MagicContext, rest: str) -> Any:
    from .prompt_perturb import perturb

    return perturb(ctx, rest)


COMMANDS = {"compare": compare, "test": test, "optimize": optimize, "alias": alias, "feedback": feedback_cmd, "cache": cache_cmd,
            "perturb": perturb_cmd}
