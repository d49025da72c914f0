"""``cellops rag``: build, list, search and evaluate indexes from the shell (same code as %%rag)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rag", help="RAG indexes: build, list, search, eval")
    rsub = p.add_subparsers(dest="rag_command", metavar="COMMAND", required=True)
    b = rsub.add_parser("build", help="build (or incrementally rebuild) an index")
    b.add_argument("name")
    b.add_argument("sources", nargs="+", help="files, folders or globs")
    b.add_argument("--embedder", default="default")
    b.add_argument("--chunker", default="auto")
    b.add_argument("--chunk-size", type=int, default=128)
    b.add_argument("--overlap", type=int, default=16)
    b.add_argument("--no-stem", action="store_true", help="BM25 without the Snowball English stemmer")
    b.set_defaults(func=_build)
    ls = rsub.add_parser("list", help="latest version of each index, or one index's history")
    ls.add_argument("name", nargs="?")
    ls.set_defaults(func=_list)
    s = rsub.add_parser("search", help="top-k chunks for a query")
    s.add_argument("name")
    s.add_argument("query")
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--mode", choices=("dense", "bm25", "hybrid", "weighted"), default="dense")
    s.set_defaults(func=_search)
    e = rsub.add_parser("eval", help="recall@k, MRR, nDCG@10 on BEIR queries/qrels")
    e.add_argument("name")
    e.add_argument("--queries", required=True)
    e.add_argument("--qrels", help="BEIR qrels TSV, or a dataset NAME@V of its rows")
    e.add_argument("-k", type=int, default=10)
    e.add_argument("--weighted", type=float, metavar="W", help="dense weight of the weighted mode")
    e.add_argument("--rerank", metavar="MODEL", help="also score dense + rerank by MODEL (slow)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(func=_eval)


def _build(args: argparse.Namespace) -> int:
    from ..kernels_lib import rag

    v = rag.build(args.name, args.sources, embedder=args.embedder, chunker=args.chunker,
                  chunk_size=args.chunk_size, overlap=args.overlap, stem=not args.no_stem)
    print(v._repr_mimebundle_()["text/plain"])
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..kernels_lib import rag
    from ..widgets.rag_views import IndexListView

    versions = rag.history(args.name) if args.name else rag.list_indexes()
    print(IndexListView(versions)._repr_mimebundle_()["text/plain"])
    return 0


def _search(args: argparse.Namespace) -> int:
    from ..kernels_lib import rag

    print(rag.search(args.name, args.query, k=args.k, mode=args.mode)._repr_mimebundle_()["text/plain"])
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ..kernels_lib import rag
    from ..kernels_lib.rag.fusion import DENSE_WEIGHT

    m = rag.evaluate(args.name, args.queries, args.qrels, k=args.k, rerank=args.rerank,
                     weight=DENSE_WEIGHT if args.weighted is None else args.weighted)
    print(json.dumps(dict(m), indent=1) if args.json else m._repr_mimebundle_()["text/plain"])
    return 0
