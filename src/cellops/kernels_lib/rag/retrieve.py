"""``search``: a query -> ranked hits, dense (ScaNN / exact), BM25, hybrid (RRF of both) or
weighted (normalised score fusion, fusion.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import html
from ..errors import InvalidInputError
from ..models import get_embedder
from ..tracking import Trace, genai, traces
from ..workspace import Workspace, get_workspace
from . import fusion, lexical
from .store import Chunk, Index, open_index

MODES = ("dense", "bm25", "hybrid", "weighted")
TABLE_COLUMNS = ("rank", "score", "source", "location", "text")
SNIPPET = 60  # characters of a hit's text in the text/plain table (one line each)
HTML_SNIPPET = 300


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    chunk: Chunk
    mode: str = "dense"

    text = property(lambda self: self.chunk.text)
    source = property(lambda self: self.chunk.source)
    doc_id = property(lambda self: self.chunk.doc_id)

    @property
    def location(self) -> str:
        """Where in the source: page, heading, character offsets."""
        page = self.chunk.meta.get("page")
        parts = [f"p.{page}" if page else "", self.chunk.heading,
                 f"chars {self.chunk.start}-{self.chunk.end}"]
        return " · ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": round(float(self.score), 4), "source": self.source,
                "doc_id": self.doc_id, "chunk": self.chunk.id, "location": self.location,
                "text": self.text}


class SearchResult(list[Hit]):
    """A list of :class:`Hit` (best first) that shows as a table; ``.df`` is a DataFrame."""

    def __init__(self, hits: Sequence[Hit], query: str, index: str, mode: str = "dense",
                 trace_id: str | None = None) -> None:
        super().__init__(hits)
        self.query, self.index, self.mode, self.trace_id = query, index, mode, trace_id

    @property
    def title(self) -> str:
        return f"for {self.query!r} in {self.index} ({self.mode})"

    @property
    def df(self) -> Any:
        """A DataFrame (all of ``Hit.to_dict``) that displays as this table (``frame.HitFrame``)."""
        from .frame import hit_frame

        return hit_frame([h.to_dict() for h in self],
                         ["rank", "score", "source", "doc_id", "chunk", "location", "text"], self.title)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return hits_bundle(f"{len(self)} hits {self.title}", [(h.rank, f"{h.score:.3f}", h.source, h.location, h.text) for h in self])


def _snippet(text: str, n: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= n else flat[:n - 1] + "…"


def hits_bundle(title: str, rows: Sequence[Sequence[Any]]) -> dict[str, str]:
    """text/plain + escaped text/html of hit rows (TABLE_COLUMNS; the text cut to a snippet).
    The plain table leaves out the location so a row fits one ~130-column line."""
    plain = [(rank, score, source, _snippet(text, SNIPPET)) for rank, score, source, _, text in rows]
    rich = [(*r[:-1], _snippet(r[-1], HTML_SNIPPET)) for r in rows]
    return {"text/plain": title + "\n" + html.text_table(("rank", "score", "source", "text"), plain),
            "text/html": html.box(title, html.table(TABLE_COLUMNS, rich))}


def _mode(hybrid: bool, mode: str | None) -> str:
    m = mode or ("hybrid" if hybrid else "dense")
    if m not in MODES:
        raise InvalidInputError(f"unknown search mode '{m}'; use one of {', '.join(MODES)}")
    return m


def search_many(index: Index, queries: Sequence[str], k: int = 10, mode: str = "dense",
                vectors: np.ndarray | None = None, weight: float = fusion.DENSE_WEIGHT,
                leaves: int | None = None, reorder: int | None = None) -> list[list[Hit]]:
    """Ranked hits for each query (batched: one embedding call and one ANN call for all);
    ``weight`` is the dense share of the ``weighted`` mode; ``leaves`` / ``reorder`` are ScaNN's
    query-time settings (default: the index version's)."""
    if k < 1:
        raise InvalidInputError(f"-k must be at least 1, got {k}")
    pool = k if mode == "dense" else fusion.pool(k)  # fusion needs depth from both retrievers
    dense_ids = dense_sc = bm_ids = bm_sc = None
    if mode in ("dense", "hybrid", "weighted"):
        q = vectors if vectors is not None else get_embedder(index.embedder_uri).encode(list(queries))
        dense_ids, dense_sc = index.dense.search(q, pool, leaves=leaves, reorder=reorder)
    if mode in ("bm25", "hybrid", "weighted"):
        bm_ids, bm_sc = index.bm25.search(queries, pool)
    out = []
    for qi in range(len(queries)):
        if mode == "dense":
            ranked = list(zip(dense_ids[qi], dense_sc[qi], strict=True))[:k]
        elif mode == "bm25":
            ranked = [(i, s) for i, s in zip(bm_ids[qi], bm_sc[qi], strict=True) if i >= 0][:k]
        elif mode == "weighted":
            ranked = fusion.weighted((dense_ids[qi], dense_sc[qi]), (bm_ids[qi], bm_sc[qi]), k, weight)
        else:
            ranked = lexical.rrf([dense_ids[qi], bm_ids[qi]], k)
        out.append([Hit(r + 1, float(s), index.chunks[int(i)], mode)
                    for r, (i, s) in enumerate(ranked) if int(i) >= 0])
    return out


def traced_search(trace: Trace, index: Index, question: str, k: int, mode: str,
                  weight: float = fusion.DENSE_WEIGHT,
                  ann: tuple[int | None, int | None] = (None, None)) -> list[Hit]:
    """retrieve (retriever span) with the query embedding as its child; ids and scores as events."""
    with trace.span("retrieve", kind="retriever", **{"input.value": genai.clip(question),
                    "retrieval.k": k, "retrieval.mode": mode, "cellops.index": index.ref}) as span:
        vectors = None
        if mode != "bm25":
            with trace.span("embed query", kind="embedding", **{"embedding.model_name": index.embedder_uri}):
                vectors = get_embedder(index.embedder_uri).encode([question])
        hits = search_many(index, [question], k, mode, vectors=vectors, weight=weight,
                           leaves=ann[0], reorder=ann[1])[0]
        if index.dense.searcher is not None and mode != "bm25":  # which ScaNN settings answered
            span.attrs["cellops.ann.leaves"], span.attrs["cellops.ann.reorder"] = \
                index.dense.query_settings(*ann)
        for i, h in enumerate(hits):  # OpenInference's document list: Phoenix shows it per span
            span.attrs |= {f"retrieval.documents.{i}.document.id": h.chunk.id,
                           f"retrieval.documents.{i}.document.score": float(h.score),
                           f"retrieval.documents.{i}.document.content": genai.clip(h.text)}
        span.add_event("retrieval.chunks", ids=[h.chunk.id for h in hits], scores=[float(h.score) for h in hits])
    return hits


def search(name: str, query: str, k: int = 10, hybrid: bool = False, *, mode: str | None = None,
           weight: float = fusion.DENSE_WEIGHT, rerank: str | None = None,
           leaves: int | None = None, reorder: int | None = None,
           workspace: Workspace | None = None) -> SearchResult:
    """Top-``k`` chunks of index ``name`` (``NAME@V`` too) for ``query``; ``leaves`` /
    ``reorder`` override the ScaNN leaves searched and exact re-rank width for this search."""
    if not query or not query.strip():
        raise InvalidInputError("the query is empty: give some text to search for")
    ws = workspace or get_workspace()
    index = open_index(name, ws)
    m = _mode(hybrid, mode)
    trace = Trace(f"rag search {index.ref}", **{"input.value": genai.clip(query)})
    try:
        with trace:
            hits = traced_search(trace, index, query, max(k, 10) if rerank else k, m, weight, (leaves, reorder))
            if rerank:
                from .rerank import rerank as rescore

                with trace.span("rerank", kind="reranker", model=rerank):
                    hits = rescore(query, hits, rerank, k, workspace=ws)
    finally:  # a failed search keeps its trace (the error and traceback are on its span)
        traces.save(ws, trace)
    return SearchResult(hits, query, index.ref, m + ("+rerank" if rerank else ""), trace.trace_id)
