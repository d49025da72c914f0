"""RAG: ingest (load, chunk, embed), index (ScaNN / exact + BM25), ask with citations, evaluate.

    import cellops
    v = cellops.rag.build("docs", ["docs/", "README.md"])     # -> IndexVersion (v.ref == "docs@1")
    hits = cellops.rag.search("docs", "how do I install?", k=5)  # hits[0].text / .source / .score
    a = cellops.rag.ask("docs", "How do I install it?", k=4)    # a.text, a.citations[0].source
    m = cellops.rag.evaluate("docs", "queries.jsonl", "qrels.tsv", k=10)  # {"dense/recall@10": ...}

The same functions back ``%%rag build|ask`` and ``%rag search|eval|map|list|show``.
Submodules are imported on first use so ``import cellops.rag`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "build": ("ingest", "build"),
    "IndexVersion": ("ingest", "IndexVersion"),
    "search": ("retrieve", "search"),
    "Hit": ("retrieve", "Hit"),
    "SearchResult": ("retrieve", "SearchResult"),
    "ask": ("answer", "ask"),
    "Answer": ("answer", "Answer"),
    "Citation": ("answer", "Citation"),
    "evaluate": ("evaluation", "evaluate"),
    "qa_to_beir": ("evaluation", "qa_to_beir"),
    "embedding_map": ("embmap", "embedding_map"),
    "open_index": ("store", "open_index"),
}

_SUBMODULES = {"answer", "ann", "chunkers", "embmap", "evaluation", "ingest", "lexical", "loaders",
               "retrieve", "store", "text"}

__all__ = [*_API, "history", "list_indexes"]


def __getattr__(name: str) -> Any:
    if name in _API:
        mod, attr = _API[name]
        return getattr(importlib.import_module(f"{__name__}.{mod}"), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_indexes(workspace: Any = None) -> list[Any]:
    """The latest version of every index in the workspace."""
    from ..workspace import get_workspace
    from .store import KIND

    ws = workspace or get_workspace()
    return [ws.resolve(KIND, n) for n in ws.names(KIND)]


def history(name: str, workspace: Any = None) -> list[Any]:
    from ..workspace import get_workspace
    from .store import KIND

    return (workspace or get_workspace()).list_versions(KIND, name)
