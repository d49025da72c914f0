"""%%dataset NAME: save rows as a versioned dataset with a card; %dataset list|show|card|history|alias."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from ..kernels_lib import datasets
from ..kernels_lib.datasets.formats import FORMATS
from ..kernels_lib.datasets.sources import JsonLines
from .context import MagicArgumentParser, MagicContext, interpolate
from .views import TextView

_SPLIT = re.compile(r"^([A-Za-z_][\w-]*):\s+(\S.*)$")  # "test: b.jsonl" (the space keeps qa@1:test whole)

cell_parser = MagicArgumentParser(prog="%%dataset")
cell_parser.add_argument("name")
cell_parser.add_argument("--format", choices=FORMATS, help="row format (default: detected)")
cell_parser.add_argument("--description", default="", help="one line for the card")
cell_parser.add_argument("-o", "--output", metavar="VAR", help="store the DatasetVersion in VAR")

HELP = f"""Versioned datasets with a dataset card (format, schema, duplicates, label balance, PII).

Cell:  {cell_parser.format_usage().strip()}
  The body is either JSON Lines (one row per line), or sources one per line: a file (.jsonl
  .json .csv .tsv .txt .parquet), a notebook variable (DataFrame / list of rows) or a saved
  dataset NAME@V; prefix a source with 'SPLIT:' (train: a.jsonl / test: b.jsonl) for splits.
  Bad rows are listed with their line numbers and left out; a new version is saved only when
  the rows change. NAME@V then works in %%finetune --data, %prompt test|compare --on, %%rag build.
Line:  %dataset list | show NAME[@V][:SPLIT] [-n N] | card NAME[@V] | history NAME | alias NAME@V ALIAS
Python: cellops.datasets.save(name, rows_or_path_or_dataframe) -> (version, created).
"""


@dataclass(frozen=True)
class CellArgs:
    name: str
    data: Any
    format: str | None
    description: str
    output: str | None


def _source(ctx: MagicContext, text: str) -> Any:
    text = text.strip()
    if text.isidentifier() and text in ctx.user_ns:
        return ctx.user_ns[text]
    return interpolate(ctx, text)


def parse_cell(ctx: MagicContext, line: str, body: str) -> CellArgs:
    a = cell_parser.parse_line(line)
    lines = [s for s in body.split("\n") if s.strip() and not s.lstrip().startswith("#")]
    if not lines:
        raise UsageError("%%dataset needs rows (JSON Lines) or sources (files, variables, NAME@V) in the body")
    if lines[0].lstrip().startswith("{"):
        data: Any = JsonLines(body, "the cell")
    else:
        splits: dict[str, Any] = {}
        for s in lines:
            m = _SPLIT.match(s.strip())
            key, src = (m[1], m[2]) if m else ("train", s)
            if key in splits:
                raise UsageError(f"split '{key}' is given twice; one source per split (merge files first)")
            splits[key] = _source(ctx, src)
        data = splits if list(splits) != ["train"] else splits["train"]
    return CellArgs(a.name, data, a.format, a.description, a.output)


def cell(ctx: MagicContext, line: str, body: str) -> Any:
    a = parse_cell(ctx, line, body)
    v, created = datasets.save(a.name, a.data, format=a.format, description=a.description,
                               workspace=ctx.workspace, source="magic")
    ctx.store(a.output, v)
    return _Saved(v, created)


class _Saved:
    """The card, headed by what happened (new version or unchanged)."""

    def __init__(self, version: datasets.DatasetVersion, created: bool) -> None:
        self.version, self.created = version, created

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        head = f"saved new version {self.version.ref}" if self.created else f"unchanged, still {self.version.ref}"
        b = self.version._repr_mimebundle_()
        return {"text/plain": head + "\n" + b["text/plain"], "text/html": b["text/html"]}


def line_command(ctx: MagicContext, line: str) -> Any:
    words = line.split()
    ws = ctx.workspace
    cmd = words[0] if words else ""
    if cmd == "list" or cmd == "history":
        items = datasets.history(words[1], ws) if cmd == "history" and len(words) > 1 else datasets.list_datasets(ws)
        if not items and cmd == "history" and len(words) > 1:
            raise UsageError(f"no saved dataset named '{words[1]}'; %dataset list shows the saved ones")
        if not items:
            return TextView("(no datasets yet)")
        return TextView("\n".join(f"{d.ref}  {d.hash[:12]}  {d.format}  {d.version.content['rows']} rows"
                                  f"{'  aliases ' + ', '.join(d.version.aliases) if d.version.aliases else ''}"
                                  for d in items))
    if cmd == "card" and len(words) == 2:
        d = datasets.get(words[1], ws)
        d.card  # noqa: B018 - read it here: a damaged card.json is one UsageError, not a display traceback
        return d
    if cmd == "show" and len(words) in (2, 4) and (len(words) == 2 or words[2] == "-n"):
        n = int(words[3]) if len(words) == 4 and words[3].isdigit() else 10
        return datasets.get(words[1], ws).to_frame().head(n)
    if cmd == "alias" and len(words) == 3:
        d = datasets.alias(words[1], words[2], ws)
        return TextView(f"{d.name}@{words[2]} -> {d.ref}")
    raise UsageError("usage: %dataset list | show NAME[@V][:SPLIT] [-n N] | card NAME[@V] | history NAME | "
                     "alias NAME@V ALIAS")


def run(ctx: MagicContext, line: str, cell_body: str | None) -> Any:
    return line_command(ctx, line) if cell_body is None else cell(ctx, line, cell_body)
