"""%%guard: write a policy in a cell (versioned YAML); %guard on|off|status|check|list|show|eval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from ..kernels_lib import guard
from .context import MagicArgumentParser, MagicContext
from .views import TextView

cell_parser = MagicArgumentParser(prog="%%guard")
cell_parser.add_argument("name", help="policy name (a new version is saved when the YAML changes)")
cell_parser.add_argument("--on", action="store_true", help="apply it to every call right away")
cell_parser.add_argument("-o", "--output", metavar="VAR", help="store the Policy in VAR")

eval_parser = MagicArgumentParser(prog="%guard eval")
eval_parser.add_argument("policy")
eval_parser.add_argument("data", help="JSONL of {text, label} or {text, spans}, or a dataset NAME@V")
eval_parser.add_argument("--rail", default="input", choices=("input", "output", "retrieval"))
eval_parser.add_argument("--limit", type=int)
eval_parser.add_argument("-o", "--output", metavar="VAR")

HELP = f"""Guardrail policies applied to every %%prompt and %%rag call while on.

Cell:  {cell_parser.format_usage().strip()}
  The body is YAML: input:, retrieval:, output: lists of checks, e.g.
    extends: default
    input:
      - check: topics
        denied: {{politics: ["who should I vote for", "is the president doing a good job"]}}
        action: block
  Checks: injection, harmful, pii, topics, groundedness, json, regex, banned, refusal, length.
  Each takes threshold (0..1), action (block | redact | warn | log | off) and its own options.
Line:  %guard on NAME[@V] | off | status | list | show NAME | history NAME
       %guard check [--output] [--policy REF] [--context VAR] [-o VAR] TEXT
       %guard eval POLICY DATA.jsonl [--rail input|output|retrieval] [--limit N] [-o VAR]
Built-in policies: default, strict (`%guard show default`).
Python: cellops.guard.load / on / off / status / check.
"""


def cell(ctx: MagicContext, line: str, body: str) -> Any:
    a = cell_parser.parse_line(line)
    ws = ctx.workspace
    from ..kernels_lib.guard.policy import save

    pol, created = save(a.name, body, ws)
    ctx.store(a.output, pol)
    if a.on:
        guard.on(pol.ref, ws)
    state = "saved new version" if created else "unchanged, still"
    return guard.status(ws) if a.on else _Saved(f"{state} {pol.ref} (hash {pol.hash[:10]}); "
                                                 f"`%guard on {pol.name}` to apply it", pol)


class _Saved:
    def __init__(self, message: str, policy: Any) -> None:
        self.message, self.policy = message, policy

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from html import escape

        from ..kernels_lib import html

        inner = self.policy._repr_mimebundle_()
        return {"text/plain": self.message + "\n" + inner["text/plain"],
                "text/html": html.box("guard", f"<div>{escape(self.message)}</div>" + inner["text/html"])}


@dataclass(frozen=True)
class CheckArgs:
    text: str
    output: bool  # check as a model output (output rails) instead of a user input
    policy: str | None
    context: list[Any] | None  # retrieved passages for grounding checks
    out: str | None


CHECK_USAGE = "usage: %guard check [--output] [--policy REF] [--context VAR] [-o VAR] TEXT"


def parse_check(ctx: MagicContext, rest: str) -> CheckArgs:
    """Flags first, then the text as written (quotes and apostrophes kept, so no shlex)."""
    opts: dict[str, str] = {}
    output, words = False, rest.split(" ")
    while words and words[0].startswith("-"):
        flag = words.pop(0)
        if flag == "--output":
            output = True
        elif flag in ("--policy", "--context", "-o") and words:
            opts[flag] = words.pop(0)
        else:
            raise UsageError(f"%guard check: unknown or incomplete flag '{flag}'; "
                             "use --output, --policy REF, --context VAR, -o VAR")
    text = " ".join(words).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if not text:
        raise UsageError(CHECK_USAGE)
    context = ctx.lookup(opts["--context"]) if "--context" in opts else None
    return CheckArgs(text, output, opts.get("--policy"), [context] if isinstance(context, str) else context,
                     opts.get("-o"))


def _check(ctx: MagicContext, rest: str) -> Any:
    a = parse_check(ctx, rest)
    rep = guard.check(a.text, output=a.output, context=a.context, policy=a.policy, workspace=ctx.workspace)
    ctx.store(a.out, rep)
    return rep


def line_command(ctx: MagicContext, line: str) -> Any:
    cmd, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    ws = ctx.workspace
    if cmd == "on":
        return guard.on(rest or "default", ws)
    if cmd == "off":
        return guard.off(ws)
    if cmd in ("status", ""):
        return guard.status(ws)
    if cmd == "check":
        return _check(ctx, rest)
    if cmd == "list":
        return guard.list_policies(ws)
    if cmd == "show":
        if not rest:
            raise UsageError("usage: %guard show NAME[@V]")
        return TextView(guard.show(rest, ws))
    if cmd == "history":
        versions = guard.history(rest, ws)
        return TextView("\n".join(f"{v.ref}  {v.hash[:10]}  {', '.join(v.aliases)}" for v in versions)
                        or f"no saved policy named '{rest}'")
    if cmd == "eval":
        a = eval_parser.parse_line(rest)
        res = guard.evaluate(a.policy, a.data, rail=a.rail, limit=a.limit, workspace=ws)
        ctx.store(a.output, res)
        return res
    raise UsageError(f"unknown %guard command '{cmd}'; use on, off, status, check, list, show, history, eval")


def run(ctx: MagicContext, line: str, cell_body: str | None) -> Any:
    return line_command(ctx, line) if cell_body is None else cell(ctx, line, cell_body)
