"""%%prompt: save a versioned prompt template and run it; %prompt list|show|history|diff|run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from IPython.core.error import UsageError

from ..kernels_lib import prompts, yamlsafe
from ..kernels_lib.prompts import template as tpl
from .context import MagicArgumentParser, MagicContext, check_template, parse_kv
from .prompt_loop import COMMANDS as LOOP_COMMANDS  # compare / test / alias / feedback
from .prompt_loop import check_tests, read_tests
from .views import PromptListView, TextView

cell_parser = MagicArgumentParser(prog="%%prompt")
cell_parser.add_argument("name")
cell_parser.add_argument("--model", help="model URI (default: %%config Cellops.model)")
cell_parser.add_argument("--system", help="system prompt (a template too)")
cell_parser.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                         help="template variable; repeatable")
cell_parser.add_argument("--temperature", type=float)
cell_parser.add_argument("--top-p", type=float)
cell_parser.add_argument("--max-tokens", type=int)
cell_parser.add_argument("--stop", action="append")
cell_parser.add_argument("--seed", type=int)
cell_parser.add_argument("-o", "--output", metavar="VAR", help="store the run result in VAR")
cell_parser.add_argument("--no-run", action="store_true", help="save the version only")
cell_parser.add_argument("--no-cache", action="store_true", help="call the model even when cached")
cell_parser.add_argument("--tests", metavar="FILE|VAR", help="test cases to store with the version")

run_parser = MagicArgumentParser(prog="%prompt run")
run_parser.add_argument("ref")
run_parser.add_argument("-p", "--param", action="append", metavar="KEY=VALUE")
run_parser.add_argument("--model")
run_parser.add_argument("-o", "--output", metavar="VAR")
run_parser.add_argument("--no-cache", action="store_true")

HELP = f"""Versioned prompt templates run against any model.

Cell:  {cell_parser.format_usage().strip()}
  The body is a Jinja2 template; variables come from -p and from the notebook.
  Optional test cases follow a line '---' (YAML list of {{vars, assert}}; or --tests FILE):
    - vars: {{country: France}}
      assert: [{{type: icontains, value: paris}}, {{type: max-length, value: 80}}]
  Answers come from the workspace response cache when the same call was made before
  (--no-cache to call the model anyway).
Line:  %prompt list | show NAME[@V] | history NAME | diff NAME@A NAME@B
       %prompt run NAME[@V] [-p k=v ...] [--model URI] [--no-cache] [-o VAR]
       %prompt compare NAME@A NAME@B ... [--models URI,URI] --on CASES [-o VAR]
       %prompt test NAME[@V] [--tests FILE] [--model URI]   (raises in papermill runs)
       %prompt optimize NAME[@V] --on CASES [--search system,fewshot,params,model] [--budget CALLS] [--holdout 0.3]
       %prompt perturb NAME[@V] --on CASES --kinds typos,case,whitespace,paraphrase,negation,
              injection,pii,unicode,long [--model URI] [--seed N] [-o VAR]   (robustness table)
       %prompt alias NAME@V prod
       %prompt feedback RUN[:CELL] up|down [COMMENT] | list [NAME] | export NAME FILE --format sft|preference
       %prompt cache [stats | clear [MODEL]]
Model URIs: default, llamacpp:<file.gguf>, hf:<dir>, openai:<base_url>#<model>, NAME@V.
"""


def _gen_params(a: Any) -> dict[str, Any]:
    d = {"temperature": a.temperature, "top_p": a.top_p, "max_tokens": a.max_tokens,
         "seed": a.seed, "stop": tuple(a.stop) if a.stop else None}
    return {k: v for k, v in d.items() if v is not None}


def _variables(ctx: MagicContext, source: str, given: dict[str, Any]) -> dict[str, Any]:
    """Template variables: -p values win over notebook variables of the same name."""
    found = {k: ctx.user_ns[k] for k in tpl.variables(source) if k in ctx.user_ns}
    return found | given


def execute(ctx: MagicContext, ref: Any, variables: dict[str, Any], model: str | None,
            params: dict[str, Any] | None, out: str | None, cache: bool = True) -> Any:
    from ..widgets.stream import TokenStream
    from ..widgets.trace_view import live_trace_view

    stream = TokenStream(ctx.live)
    view = live_trace_view(ctx.live)  # fills in while the call runs
    result = prompts.run(ref, variables, model=model, params=params,
                         on_token=stream, workspace=ctx.workspace, source="magic", cache=cache,
                         on_trace=view)
    return _shown(ctx, stream, view, result, out)


def _shown(ctx: MagicContext, stream: Any, view: Any, result: Any, out: str | None) -> Any:
    if view is not None:  # the result shows the same waterfall as static HTML; a failed run keeps the live one
        view.close()
    ctx.store(out, result)
    if ctx.live and not result.blocked:  # rating buttons under the answer
        from ..widgets.feedback import RunWithFeedback

        return stream.finish(RunWithFeedback(result, ctx.workspace))
    return stream.finish(result)


@dataclass(frozen=True)
class CellArgs:
    """A checked %%prompt cell: everything is validated before a version is saved."""

    name: str
    template: str
    system: str | None
    params: dict[str, Any]  # generation parameters (+ model) stored with the version
    tests: list[dict[str, Any]] | None
    variables: dict[str, Any]  # -p values over same-named notebook variables
    model: str | None
    output: str | None
    run: bool
    cache: bool


def parse_cell(ctx: MagicContext, line: str, body: str) -> CellArgs:
    a = cell_parser.parse_line(line)
    template, _, tests_src = body.partition("\n---\n")
    tests = _cell_tests(ctx, tests_src, a.tests)
    if not template.strip():
        raise UsageError("%%prompt needs a template in the cell body")
    check_template(ctx, template + "\n" + (a.system or ""))
    variables = _variables(ctx, template + (a.system or ""), parse_kv(a.param))
    params = _gen_params(a) | ({"model": a.model} if a.model else {})
    return CellArgs(a.name, template, a.system, params, tests, variables, a.model, a.output,
                    not a.no_run, not a.no_cache)


def _cell_tests(ctx: MagicContext, inline: str, option: str | None) -> list[dict[str, Any]] | None:
    """Test cases after a '---' line, then those of --tests FILE|VAR, each assertion checked."""
    tests = None
    if inline.strip():
        try:
            tests = yamlsafe.safe_load(inline)  # a key given twice would silently drop an assertion
        except yaml.YAMLError as e:
            raise UsageError(f"test cases after '---' are not valid YAML: {yamlsafe.one_line(e)}") from None
        if not isinstance(tests, list):
            raise UsageError("test cases after '---' must be a YAML list of {vars, assert} items")
        tests = check_tests(tests)  # a malformed assertion is named before anything is saved
    if option:
        tests = (tests or []) + read_tests(ctx, option)
    return tests


def cell(ctx: MagicContext, line: str, body: str) -> Any:
    a = parse_cell(ctx, line, body)
    if not a.run:
        prompt, created, _ = prompts.save_and_run(a.name, a.template, system=a.system, params=a.params,
                                                  tests=a.tests, run=False, workspace=ctx.workspace)
        ctx.store(a.output, prompt)
        state = "saved new version" if created else "unchanged, still"
        return TextView(f"{state} {prompt.ref} (hash {prompt.hash[:10]})")
    from ..widgets.stream import TokenStream
    from ..widgets.trace_view import live_trace_view

    stream = TokenStream(ctx.live)
    view = live_trace_view(ctx.live)  # fills in while the call runs
    _, _, result = prompts.save_and_run(
        a.name, a.template, a.variables, system=a.system, params=a.params, tests=a.tests, model=a.model,
        on_token=stream, workspace=ctx.workspace, source="magic", cache=a.cache, on_trace=view)
    return _shown(ctx, stream, view, result, a.output)


def line_command(ctx: MagicContext, line: str) -> Any:
    words = line.split(None, 1)
    if not words:
        raise UsageError("usage: %prompt list | show | history | diff | run | compare | test | alias | feedback")
    cmd, rest = words[0], (words[1] if len(words) > 1 else "")
    ws = ctx.workspace
    if cmd == "list":
        return PromptListView(prompts.list_prompts(ws))
    if cmd == "show":
        p = prompts.get(rest.strip(), ws)
        head = f"{p.ref}  hash {p.hash[:10]}  aliases {', '.join(p.aliases) or '-'}  params {p.params}"
        return TextView(head + (f"\nsystem: {p.system}" if p.system else "") + "\n\n" + p.template)
    if cmd == "history":
        versions = prompts.history(rest.strip(), ws)
        if not versions and rest.strip():
            raise UsageError(f"no saved prompt named '{rest.strip()}'; %prompt list shows the saved ones")
        return PromptListView(versions)
    if cmd == "diff":
        refs = rest.split()
        if len(refs) != 2:
            raise UsageError("usage: %prompt diff NAME@A NAME@B")
        return TextView(prompts.diff(*refs, ws) or "(no difference)")
    if cmd == "run":
        a = run_parser.parse_line(rest)
        p = prompts.get(a.ref, ws)
        variables = _variables(ctx, p.template + (p.system or ""), parse_kv(a.param))
        return execute(ctx, p, variables, a.model, None, a.output, cache=not a.no_cache)
    if cmd in LOOP_COMMANDS:
        return LOOP_COMMANDS[cmd](ctx, rest)
    raise UsageError(f"unknown %prompt command '{cmd}'; use list, show, history, diff, run, "
                     + ", ".join(LOOP_COMMANDS))


def run(ctx: MagicContext, line: str, cell_body: str | None) -> Any:
    return line_command(ctx, line) if cell_body is None else cell(ctx, line, cell_body)
