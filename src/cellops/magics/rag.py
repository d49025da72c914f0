"""%%rag build|ask and %rag search|eval|map|list|show|history: thin glue over cellops.rag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

from ..kernels_lib import rag
from ..kernels_lib.rag.fusion import DENSE_WEIGHT
from .context import MagicArgumentParser, MagicContext, interpolate

build_parser = MagicArgumentParser(prog="%%rag build")
build_parser.add_argument("name")
build_parser.add_argument("--embedder", help="embedder URI (default: %%config Cellops.embedder)")
build_parser.add_argument("--chunker", default="auto", help="auto | token | markdown | code")
build_parser.add_argument("--chunk-size", type=int, default=128, help="tokens (words) per chunk")
build_parser.add_argument("--overlap", type=int, default=16, help="tokens shared by neighbours")
build_parser.add_argument("--recall", type=float, metavar="R",
                          help="aim ScaNN at recall@10 R (measured vs exact search on a sample of the corpus while building)")
build_parser.add_argument("--no-stem", action="store_true",
                          help="BM25 without the Snowball English stemmer (recorded in the index; default: stemmed)")
build_parser.add_argument("-o", "--output", metavar="VAR")

ask_parser = MagicArgumentParser(prog="%%rag ask")
ask_parser.add_argument("name", help="index NAME or NAME@V")
ask_parser.add_argument("question", nargs="*", help="(line form) the question")
ask_parser.add_argument("-k", type=int, default=4, help="passages to retrieve")
ask_parser.add_argument("--model", help="model URI (default: %%config Cellops.answer_model, else Cellops.model)")
ask_parser.add_argument("--hybrid", action="store_true", help="dense + BM25 (reciprocal-rank fusion)")
ask_parser.add_argument("--weighted", nargs="?", type=float, const=DENSE_WEIGHT, metavar="W",
                        help=f"dense + BM25, normalised scores weighted W : 1-W (default {DENSE_WEIGHT}; %%rag eval reports the best W)")
ask_parser.add_argument("--prompt", metavar="NAME@V", help="answer prompt (default: rag-answer)")
ask_parser.add_argument("--rerank", metavar="MODEL", help="rescore the top 10 passages by P(yes) under MODEL (e.g. qwen-1.5b)")
ask_parser.add_argument("--leaves", type=int, metavar="N", help="ScaNN leaves searched (default: the index's)")
ask_parser.add_argument("--reorder", type=int, metavar="N", help="ScaNN candidates re-scored exactly (default: the index's)")
ask_parser.add_argument("-o", "--output", metavar="VAR")

search_parser = MagicArgumentParser(prog="%rag search")
search_parser.add_argument("name")
search_parser.add_argument("query", nargs="+")
search_parser.add_argument("-k", type=int, default=10)
search_parser.add_argument("--hybrid", action="store_true")
search_parser.add_argument("--weighted", nargs="?", type=float, const=DENSE_WEIGHT, metavar="W",
                           help="normalised-score fusion, dense weight W")
search_parser.add_argument("--bm25", action="store_true", help="BM25 only")
search_parser.add_argument("--rerank", metavar="MODEL", help="rescore the top 10 by P(yes) under MODEL (e.g. qwen-1.5b)")
search_parser.add_argument("--leaves", type=int, metavar="N", help="ScaNN leaves searched (default: the index's)")
search_parser.add_argument("--reorder", type=int, metavar="N", help="ScaNN candidates re-scored exactly (default: the index's)")
search_parser.add_argument("-o", "--output", metavar="VAR")

eval_parser = MagicArgumentParser(prog="%rag eval")
eval_parser.add_argument("name")
eval_parser.add_argument("--queries", required=True, help="BEIR queries.jsonl (or JSONL with 'question'), or a dataset NAME@V")
eval_parser.add_argument("--qrels", help="BEIR qrels TSV, or a dataset NAME@V of its rows (default: a query's relevant doc has its id)")
eval_parser.add_argument("-k", type=int, default=10)
eval_parser.add_argument("--answers", type=int, default=0, metavar="N",
                         help="also answer the first N queries: exact match, F1, groundedness")
eval_parser.add_argument("--model", help="model URI for --answers")
eval_parser.add_argument("--weighted", type=float, default=DENSE_WEIGHT, metavar="W",
                         help=f"dense weight of the weighted mode (default {DENSE_WEIGHT}; every W of the sweep is scored too)")
eval_parser.add_argument("--rerank", metavar="MODEL",
                         help="also score dense + rerank by MODEL (one model call per candidate: slow; e.g. qwen-0.5b)")
eval_parser.add_argument("--rerank-depth", type=int, default=20, metavar="N", help="candidates rescored per query")
eval_parser.add_argument("-o", "--output", metavar="VAR")

map_parser = MagicArgumentParser(prog="%rag map")
map_parser.add_argument("name")
map_parser.add_argument("--query", help="overlay this query and its hits")
map_parser.add_argument("-k", type=int, default=10)

HELP = f"""Retrieval-augmented generation: build an index from documents, ask it with citations.

Cell:  {build_parser.format_usage().strip()}
  The body lists sources, one per line: files, folders, globs, or a notebook variable holding a
  DataFrame or a list of strings/records. Loaders: .md .txt .rst .html .pdf .ipynb .py .json
  .jsonl .csv. Each build is a new immutable version; unchanged files are not embedded again.
Cell:  {ask_parser.format_usage().strip()}
  The body is the question ({{var}} inserts a notebook variable). The answer streams, cites its
  passages as [n] and shows them with their scores.
Line:  {search_parser.format_usage().strip()}   (a DataFrame of hits)
       {eval_parser.format_usage().strip()}
       {map_parser.format_usage().strip()}
       %rag list | show NAME[@V] | history NAME
Python: cellops.rag.build / search / ask / evaluate / embedding_map (same code).
"""

def _sources(ctx: MagicContext, body: str) -> list[Any]:
    """Body lines -> paths / globs, or the notebook object a bare identifier names."""
    out: list[Any] = []
    for line in (x.strip() for x in body.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.isidentifier() and line in ctx.user_ns and not isinstance(ctx.user_ns[line], str):
            out.append({line: ctx.user_ns[line]})
        else:
            out.append(interpolate(ctx, line))
    return out


def build(ctx: MagicContext, line: str, body: str) -> Any:
    from ..widgets.rag_progress import progress_bar

    a = build_parser.parse_line(line)
    items = _sources(ctx, body)
    if not items:
        raise UsageError("%%rag build needs sources in the cell body: files, folders, globs or a variable")
    sources: dict[str, Any] = {}  # label -> source: a path is its own label, a variable its name
    for s in items:
        sources.update(s if isinstance(s, dict) else {s: s})
    bar = progress_bar(ctx.live)
    try:
        result = rag.build(a.name, sources, embedder=a.embedder or ctx.config.embedder,
                           chunker=a.chunker, chunk_size=a.chunk_size, overlap=a.overlap,
                           workspace=ctx.workspace, progress=bar, recall=a.recall, stem=not a.no_stem)
    finally:
        bar.close()
    ctx.store(a.output, result)
    return result


def ask(ctx: MagicContext, line: str, body: str | None) -> Any:
    from ..widgets.stream import TokenStream
    from ..widgets.trace_view import live_trace_view

    a = ask_parser.parse_line(line)
    question = interpolate(ctx, body if body is not None else " ".join(a.question)).strip()
    if not question:
        raise UsageError("%%rag ask needs a question in the cell body")
    stream = TokenStream(ctx.live)
    view = live_trace_view(ctx.live)  # fills in while the call runs
    answer = rag.ask(a.name, question, k=a.k, model=a.model, hybrid=a.hybrid, prompt=a.prompt,
                     mode="weighted" if a.weighted is not None else None, weight=a.weighted or DENSE_WEIGHT,
                     rerank=a.rerank, leaves=a.leaves, reorder=a.reorder,
                     on_token=stream, workspace=ctx.workspace, source="magic", on_trace=view)
    if view is not None:  # the result shows the same waterfall as static HTML; a failed run keeps the live one
        view.close()
    ctx.store(a.output, answer)
    return stream.finish(answer)


def search(ctx: MagicContext, rest: str) -> Any:
    a = search_parser.parse_line(rest)
    mode = "bm25" if a.bm25 else ("hybrid" if a.hybrid else ("weighted" if a.weighted is not None else "dense"))
    result = rag.search(a.name, " ".join(a.query), k=a.k, mode=mode, weight=a.weighted or DENSE_WEIGHT,
                        rerank=a.rerank, leaves=a.leaves, reorder=a.reorder, workspace=ctx.workspace)
    ctx.store(a.output, result)
    return result.df


def evaluate(ctx: MagicContext, rest: str) -> Any:
    a = eval_parser.parse_line(rest)
    result = rag.evaluate(a.name, a.queries, a.qrels, k=a.k, weight=a.weighted, rerank=a.rerank,
                          rerank_depth=a.rerank_depth, answers=a.answers, model=a.model,
                          workspace=ctx.workspace)
    ctx.store(a.output, result)
    return result


def embedding_map(ctx: MagicContext, rest: str) -> Any:
    a = map_parser.parse_line(rest)
    return rag.embedding_map(a.name, a.query, a.k, workspace=ctx.workspace)


def listing(ctx: MagicContext, cmd: str, rest: str) -> Any:
    """%rag list | show NAME[@V] | history NAME."""
    from ..widgets.rag_views import IndexListView, show_index

    ws = ctx.workspace
    if cmd == "list":
        return IndexListView(rag.list_indexes(ws))
    if not rest.strip():
        raise UsageError(f"usage: %rag {cmd} NAME")
    if cmd == "history":
        name = rest.strip().split("@")[0]
        versions = rag.history(name, ws)
        if not versions:
            raise UsageError(f"no saved index named '{name}'; %rag list shows the saved ones")
        return IndexListView(versions)
    return show_index(ws, rest.strip())


def ask_line(ctx: MagicContext, rest: str) -> Any:
    return ask(ctx, rest, None)


COMMANDS: dict[str, Callable[[MagicContext, str], Any]] = {
    "search": search, "eval": evaluate, "map": embedding_map, "ask": ask_line}


def line_command(ctx: MagicContext, line: str) -> Any:
    cmd, _, rest = line.strip().partition(" ")
    if cmd in COMMANDS:
        return COMMANDS[cmd](ctx, rest)
    if cmd in ("list", "show", "history"):
        return listing(ctx, cmd, rest)
    if cmd == "build":
        raise UsageError("%%rag build is a cell magic: list the sources in the cell body")
    raise UsageError("usage: %rag search | eval | map | ask | list | show | history  (%rag? for help)")


def run(ctx: MagicContext, line: str, cell: str | None) -> Any:
    cmd, _, rest = line.strip().partition(" ")
    if cell is None:
        return line_command(ctx, line)
    if cmd == "build":
        return build(ctx, rest, cell)
    if cmd == "ask":
        return ask(ctx, rest, cell)
    raise UsageError("usage: %%rag build NAME ... | %%rag ask NAME ...  (%%rag? for help)")
