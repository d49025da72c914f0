"""``evaluate``: retrieval metrics (recall@k, MRR, nDCG@10, MAP@k, P@k; trec_eval via
pytrec_eval, as BEIR computes them) and per-query latency for dense, BM25, hybrid, weighted fusion
(plus its weight sweep) and optionally dense + ``--rerank MODEL`` side by side, on BEIR-format
queries/qrels, naming the best mode and the flag that picks it; optionally answer metrics (exact
match, token F1 against reference answers, groundedness = share of the answer's content words
found in its passages).

Rankings are per document: chunks are mapped to their ``doc_id`` (a record's ``_id``/``id``, or
the file path), duplicates removed, so qrels written against a corpus' ids work unchanged.
Without qrels each query's relevant document is the one sharing its id (QA files such as
PubMedQA, where a question and its context carry the same id).
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .. import html
from ..errors import InvalidInputError, NotFoundError
from ..jsonl import read_jsonl
from ..tracking import tracker, tracker_run
from ..workspace import Workspace, content_hash, get_workspace
from .fusion import DENSE_WEIGHT, SWEEP
from .retrieve import MODES, Hit, search_many
from .store import open_index
from .text import content_words, normalize, tokens

QUERY_FIELDS = ("text", "query", "question")
ANSWER_FIELDS = ("answers", "answer", "long_answer")
LATENCY_QUERIES = 20  # queries timed one at a time per mode, as %%rag ask searches
RERANK_MODE = "dense+rerank"
RERANK_DEPTH = 20  # dense candidates the model rescores per query in an evaluation


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise NotFoundError(f"queries file {path} not found")
    # a broken query row raises (naming its line): a metric over part of the set would mislead
    return [row for _, row in read_jsonl(path)]


def load_queries(queries: Any, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """-> [{"id", "text", "answers": [str]}] from a JSONL path, a saved dataset ``NAME@V``, a list
    of records or {id: text}."""
    if isinstance(queries, (str, Path)):
        from ..datasets.resolve import rows as dataset_rows

        hit = dataset_rows(queries, workspace)
        rows = [r for _, r in hit[1]] if hit else _read_jsonl(Path(queries).expanduser())
    elif isinstance(queries, dict):
        rows = [{"_id": k, "text": v} for k, v in queries.items()]
    else:
        rows = list(queries)
    out = []
    for i, r in enumerate(rows):
        if isinstance(r, str):
            r = {"_id": str(i), "text": r}
        text = next((r[f] for f in QUERY_FIELDS if isinstance(r.get(f), str) and r[f].strip()), None)
        if text is None:
            raise InvalidInputError(f"query {i} has no text: give each row a 'text' (BEIR) or 'question' field")
        qid = str(next((r[f] for f in ("_id", "id", "qid") if r.get(f) is not None), i))
        ans = next((r[f] for f in ANSWER_FIELDS if r.get(f)), [])
        out.append({"id": qid, "text": text, "answers": [ans] if isinstance(ans, str) else list(ans)})
    if not out:
        raise InvalidInputError("no queries to evaluate")
    return out


QREL_FIELDS = (("query-id", "query_id", "qid"), ("corpus-id", "corpus_id", "doc_id", "docid"),
               ("score", "relevance", "rel"))


def load_qrels(qrels: Any, queries: list[dict[str, Any]],
               workspace: Workspace | None = None) -> dict[str, dict[str, int]]:
    """BEIR qrels: a TSV file (query-id, corpus-id, score; header optional), a saved dataset
    ``NAME@V`` of such rows (a qrels.tsv saved with ``datasets.save``), a list of such rows,
    {query: {doc: score}}, or None (each query's relevant document has its id)."""
    if qrels is None:
        return {q["id"]: {q["id"]: 1} for q in queries}
    if isinstance(qrels, dict):
        return {str(q): {str(d): int(s) for d, s in docs.items()} for q, docs in qrels.items()}
    if isinstance(qrels, list):
        return _qrel_rows("qrels", enumerate(qrels, start=1))
    from ..datasets.resolve import rows as dataset_rows

    hit = dataset_rows(qrels, workspace)  # the resolver --queries uses: NAME@V, or the path
    if hit:
        return _qrel_rows(*hit)
    path = Path(qrels)
    if not path.is_file():
        raise NotFoundError(f"qrels file {path} not found")
    out: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not row or (n == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # blank line or the 'query-id corpus-id score' header
            if len(row) < 3:
                raise InvalidInputError(f"{path.name} line {n}: expected query-id<TAB>corpus-id<TAB>score")
            out.setdefault(row[0], {})[row[1]] = int(row[-1])
    return out


def _qrel_rows(label: str, rows: Any) -> dict[str, dict[str, int]]:
    """{query: {doc: score}} from numbered records with BEIR's column names (or qid/docid/rel)."""
    out: dict[str, dict[str, int]] = {}
    for n, row in rows:
        q, d, score = ([next((row[k] for k in keys if row.get(k) not in (None, "")), None) for keys in QREL_FIELDS]
                       if isinstance(row, dict) else (None, None, None))
        try:
            if q is None or d is None:
                raise ValueError(row)
            out.setdefault(str(q), {})[str(d)] = int(score)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{label} row {n}: expected query-id, corpus-id and an integer score "
                                    f"(BEIR qrels columns), got {str(row)[:120]}") from None
    if not out:
        raise InvalidInputError(f"{label} has no qrels rows")
    return out


def _doc_ranking(hits: list[Hit], k: int) -> list[str]:
    seen: list[str] = []
    for h in hits:
        if h.doc_id not in seen:
            seen.append(h.doc_id)
            if len(seen) == k:
                break
    return seen


def retrieval_metrics(ranked: list[list[str]], rels: list[dict[str, int]], k: int) -> dict[str, float]:
    """Mean recall@1, recall@k, MRR@k, nDCG@10, nDCG@k, MAP@k and P@k, computed by trec_eval
    (pytrec_eval) the way BEIR does: linear gains (a grade-2 document counts 2, not 2^2 - 1), so
    figures on graded qrels compare with published BEIR tables. Queries without a relevant
    document are left out (as trec_eval does); a query that retrieved nothing counts 0 (BEIR would
    drop it and inflate the mean)."""
    import pytrec_eval

    judged = {str(i): {d: int(s) for d, s in rel.items()} for i, rel in enumerate(rels)
              if any(s > 0 for s in rel.values())}
    if not judged:
        return {}
    # trec_eval orders by score, so a ranking becomes strictly decreasing scores (no ties)
    run = {str(i): {d: float(len(docs) - r) for r, d in enumerate(docs)}
           for i, docs in enumerate(ranked) if str(i) in judged and docs}
    cuts = ",".join(str(c) for c in sorted({1, 10, k}))
    names = {"recall_1": "recall@1", f"recall_{k}": f"recall@{k}", "recip_rank": f"mrr@{k}",
             "ndcg_cut_10": "ndcg@10", f"ndcg_cut_{k}": f"ndcg@{k}", f"map_cut_{k}": f"map@{k}",
             f"P_{k}": f"p@{k}"}
    measures = {f"recall.{cuts}", f"ndcg_cut.{cuts}", f"map_cut.{cuts}", f"P.{cuts}", "recip_rank"}
    per_query = pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(run) if run else {}
    # each ranking holds at most k documents, so trec_eval's reciprocal rank is MRR@k
    return {ours: round(sum(per_query.get(q, {}).get(theirs, 0.0) for q in judged) / len(judged), 4)
            for theirs, ours in names.items()}


def token_f1(pred: str, ref: str) -> float:
    p, r = tokens(pred), tokens(ref)
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r or not common:
        return 0.0
    prec, rec = common / len(p), common / len(r)
    return 2 * prec * rec / (prec + rec)


def groundedness(answer: str, passages: list[str]) -> float:
    """Share of the answer's content words that occur in the passages it was given."""
    words = content_words(answer)
    if not words:
        return 0.0
    return len(words & set().union(*(content_words(p) for p in passages))) / len(words)


class EvalResult(dict):  # type: ignore[type-arg]
    """{'dense/recall@10': ..., 'bm25/ndcg@10': ..., 'dense/p50_ms': ..., 'answer/f1': ...} shown
    as a table with a line naming the best mode; ``.sweep`` is the fusion weight -> nDCG@10."""

    def __init__(self, metrics: dict[str, float], index: str, n_queries: int, k: int,
                 sweep: dict[float, float] | None = None, rerank: str | None = None) -> None:
        super().__init__(metrics)
        self.index, self.n_queries, self.k = index, n_queries, k
        self.sweep, self.rerank = sweep or {}, rerank

    def modes(self) -> list[str]:
        return [m for m in (*MODES, RERANK_MODE) if any(key.startswith(m + "/") for key in self)]

    def table(self) -> tuple[list[str], list[list[Any]]]:
        modes = self.modes()
        names = list(dict.fromkeys(key.split("/", 1)[1] for key in self if key.split("/")[0] in modes))
        # a metric a mode lacks (only weighted has a weight) is None, not "": a W&B table types each
        # column by its first value, and a "" there made the weighted row's number fail the log
        return ["mode", *names], [[m, *(self.get(f"{m}/{x}") for x in names)] for m in modes]

    @property
    def best(self) -> tuple[str, str, float] | None:
        """(mode, the flag that picks it, nDCG@10): the highest nDCG@10, the faster on a tie; the
        weighted fusion at the sweep's best weight counts as its own candidate."""
        cands = [(m, self[f"{m}/ndcg@10"], self.get(f"{m}/p50_ms", 0.0)) for m in self.modes()
                 if f"{m}/ndcg@10" in self]
        w = self.get("fusion/best_weight")
        if w is not None and w != self.get("weighted/weight"):
            cands.append((f"weighted {w}", self["fusion/best_ndcg@10"], self.get("weighted/p50_ms", 0.0)))
        if not cands:
            return None
        mode, ndcg, _ = max(cands, key=lambda c: (c[1], -c[2]))
        flags = {"dense": "(the default)", "bm25": "--bm25 (%rag search)", "hybrid": "--hybrid",
                 "weighted": f"--weighted {self.get('weighted/weight', DENSE_WEIGHT)}",
                 RERANK_MODE: f"--rerank {self.rerank}"}
        return mode, flags.get(mode, f"--weighted {w}"), ndcg

    def summary(self) -> str:
        """The line under the table: which mode is best, by how much over dense, how to pick it."""
        best = self.best
        if best is None:
            return ""
        mode, flag, ndcg = best
        gain = f", {ndcg - self['dense/ndcg@10']:+.4f} over dense" if "dense/ndcg@10" in self else ""
        sweep = "  ".join(f"{w}: {v:.4f}" for w, v in self.sweep.items())
        return (f"best: {mode} (nDCG@10 {ndcg:.4f}{gain}) -> {flag}"
                + (f"\nweighted fusion sweep (dense weight: nDCG@10) {sweep}" if sweep else ""))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cols, rows = self.table()
        title = f"evaluation of {self.index} on {self.n_queries} queries"
        answer = {k: v for k, v in self.items() if k.startswith("answer/")}
        extra = "\n".join(x for x in (self.summary(), "  ".join(f"{k}={v}" for k, v in answer.items())) if x)
        return {"text/plain": f"{title}\n{html.text_table(cols, rows)}" + (f"\n{extra}" if extra else ""),
                "text/html": html.box(title, html.table(cols, rows) + (html.pre(extra) if extra else ""))}


def evaluate(name: str, queries: Any, qrels: Any = None, k: int = 10, *,
             modes: tuple[str, ...] = MODES, weight: float = DENSE_WEIGHT, rerank: str | None = None,
             rerank_depth: int = RERANK_DEPTH, answers: int = 0, model: str | None = None,
             workspace: Workspace | None = None) -> EvalResult:
    """Retrieval metrics and p50 latency for each mode (``weight``: the weighted mode's dense
    share; ``rerank=MODEL`` adds dense + rerank of the top ``rerank_depth``, one model call per
    candidate); with ``answers=N`` also answer metrics on N queries."""
    ws = workspace or get_workspace()
    index = open_index(name, ws)
    qs = load_queries(queries, ws)
    rel = load_qrels(qrels, qs, ws)
    if not any(q["id"] in rel for q in qs):
        raise InvalidInputError("no query id appears in the qrels; check that the files belong together")
    texts = [q["text"] for q in qs]
    rels = [rel.get(q["id"], {}) for q in qs]
    vectors = None
    if set(modes) & {"dense", "hybrid", "weighted"} or rerank:
        from ..models import get_embedder

        vectors = get_embedder(index.embedder_uri).encode(texts)
    metrics: dict[str, float] = {}
    for mode in modes:
        hits = search_many(index, texts, k * 3, mode, vectors=vectors, weight=weight)
        for m, v in retrieval_metrics([_doc_ranking(h, k) for h in hits], rels, k).items():
            metrics[f"{mode}/{m}"] = v
        metrics[f"{mode}/p50_ms"] = _latency_ms(index, texts, mode, k, weight)
    sweep = {}
    if "weighted" in modes:
        metrics["weighted/weight"] = weight
        sweep = _sweep(index, texts, vectors, rels, k)
        best = max(sweep, key=lambda w: (sweep[w], w == weight))
        metrics |= {"fusion/best_weight": best, "fusion/best_ndcg@10": sweep[best]}
    if rerank:
        metrics |= _rerank_metrics(index, texts, vectors, rels, k, rerank, rerank_depth, ws)
    if answers:
        metrics |= _answer_metrics(name, qs[:answers], model, ws)
    result = EvalResult(metrics, index.ref, len(qs), k, sweep, rerank)
    _log(ws, index, result, {"queries": _source(queries, qs), "qrels": _source(qrels, rel)})
    return result


def _source(given: Any, loaded: Any) -> dict[str, str]:
    """What the record says of an input: the path or ``NAME@V`` given (``inline`` for Python
    values, ``same ids`` for no qrels) and the hash of what was loaded from it."""
    label = str(given) if isinstance(given, (str, Path)) else "same ids" if given is None else "inline"
    return {"from": label, "hash": content_hash(loaded)}


def _latency_ms(index: Any, texts: list[str], mode: str, k: int, weight: float) -> float:
    """Median wall-clock ms of one query searched alone, its embedding included (the first,
    untimed search loads the embedder)."""
    sample = texts[:LATENCY_QUERIES]
    search_many(index, sample[:1], k, mode, weight=weight)
    lat = []
    for t in sample:
        t0 = time.perf_counter()
        search_many(index, [t], k, mode, weight=weight)
        lat.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(lat), 2)


def _sweep(index: Any, texts: list[str], vectors: Any, rels: list[dict[str, int]], k: int) -> dict[float, float]:
    """nDCG@10 of the weighted fusion at each weight of fusion.SWEEP on these queries: the best is
    the weight to pass as ``--weighted W`` for this index."""
    out = {}
    for w in SWEEP:
        ranked = [_doc_ranking(h, k) for h in search_many(index, texts, k * 3, "weighted", vectors=vectors, weight=w)]
        out[w] = retrieval_metrics(ranked, rels, k).get("ndcg@10", 0.0)
    return out


def _rerank_metrics(index: Any, texts: list[str], vectors: Any, rels: list[dict[str, int]], k: int,
                    model: str, depth: int, ws: Workspace) -> dict[str, float]:
    """Dense top ``depth`` rescored by ``model`` for every query; p50 is dense + rerank per query,
    ``ms_per_candidate`` the rerank time over the candidates it scored."""
    from ..models import get_llm
    from .rerank import rerank

    get_llm(model, ws)  # load once, outside the timings
    dense = search_many(index, texts, max(depth, k * 3), "dense", vectors=vectors)
    ranked, per_query, per_candidate = [], [], []
    for text, hits in zip(texts, dense, strict=True):
        t0 = time.perf_counter()
        search_many(index, [text], max(depth, k * 3), "dense")  # the query's own search, timed
        t1 = time.perf_counter()
        ordered = rerank(text, hits, model, len(hits), depth=depth, workspace=ws)
        t2 = time.perf_counter()
        ranked.append(_doc_ranking(ordered, k))
        per_query.append((t2 - t0) * 1000)
        per_candidate.append((t2 - t1) * 1000 / max(1, min(depth, len(hits))))
    out = {f"{RERANK_MODE}/{m}": v for m, v in retrieval_metrics(ranked, rels, k).items()}
    return out | {f"{RERANK_MODE}/p50_ms": round(statistics.median(per_query), 1),
                  f"{RERANK_MODE}/ms_per_candidate": round(statistics.median(per_candidate), 1)}


def _answer_metrics(name: str, qs: list[dict[str, Any]], model: str | None, ws: Workspace) -> dict[str, float]:
    from .answer import ask

    em = f1 = grounded = 0.0
    with_ref = 0
    for q in qs:
        a = ask(name, q["text"], model=model, workspace=ws, source="eval")
        grounded += groundedness(a.text, [h.text for h in a.passages])
        if q["answers"]:
            with_ref += 1
            em += max(float(normalize(a.text) == normalize(r)) for r in q["answers"])
            f1 += max(token_f1(a.text, r) for r in q["answers"])
    out = {"answer/groundedness": round(grounded / len(qs), 4), "answer/n": len(qs)}
    if with_ref:
        out |= {"answer/exact_match": round(em / with_ref, 4), "answer/f1": round(f1 / with_ref, 4)}
    return out


def _log(ws: Workspace, index: Any, result: EvalResult, inputs: dict[str, dict[str, str]]) -> None:
    ws.record_run("rag-eval", {"index": index.ref, "corpus_hash": index.version.content["corpus_hash"],
                               **inputs, "k": result.k, "n_queries": result.n_queries, "metrics": dict(result),
                               **tracker_run(ws.root)}, index.name, index.version.version)
    cols, rows = result.table()
    tracker.log({f"rag_eval/{k}": v for k, v in result.items()} | {"rag_eval/index": index.ref},
                tables={"rag_eval/retrieval": (cols, rows)})
    tracker.summary({f"rag_eval/{k}": v for k, v in result.items()})


def qa_to_beir(path: str | Path, out_dir: str | Path, limit: int | None = None, *,
               passages: bool = False, query_field: str = "question") -> dict[str, Path]:
    """A QA JSONL (id, question, contexts/text, answer fields; e.g. PubMedQA) -> BEIR files:
    corpus.jsonl (the contexts), queries.jsonl (the questions, with their reference answers)
    and qrels.tsv (each question -> the context with its id).

    ``passages=True`` makes each item of a row's ``contexts`` list its own document
    (``ID-0``, ``ID-1``, ...) and relevant to that row's query (grade 1 each): a harder set than
    whole contexts, where a ranking must bring the question's own passages above its
    neighbours'. ``query_field`` picks the query text (``long_answer``: the conclusion, which is
    not in the corpus, as the query; such rows carry no reference answer)."""
    rows = _read_jsonl(Path(path))[:limit]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for i, r in enumerate(rows):
        rid = str(next((r[f] for f in ("_id", "id") if r.get(f) is not None), i))
        ctx = next((r[f] for f in ("contexts", "context", "text") if r.get(f)), None)
        query = r.get(query_field) or (r.get("query") if query_field == "question" else None)
        if ctx is None or not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"{Path(path).name} row {i} needs a {query_field} and contexts/context/text")
        if passages and isinstance(ctx, list):
            docs = [(f"{rid}-{j}", str(c)) for j, c in enumerate(ctx) if str(c).strip()]
        else:
            docs = [(rid, "\n".join(ctx) if isinstance(ctx, list) else ctx)]
        corpus += [{"_id": d, "text": t} for d, t in docs]
        qrels += [f"{rid}\t{d}\t1" for d, _ in docs]
        ans = next((r[f] for f in ANSWER_FIELDS if r.get(f)), None) if query_field == "question" else None
        queries.append({"_id": rid, "text": query} | ({"answers": [ans] if isinstance(ans, str) else ans} if ans else {}))
    files = {"corpus": out / "corpus.jsonl", "queries": out / "queries.jsonl", "qrels": out / "qrels.tsv"}
    files["corpus"].write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in corpus))
    files["queries"].write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries))
    files["qrels"].write_text("\n".join(qrels) + "\n")
    return files
