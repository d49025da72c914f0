"""Retrieval modes side by side on a passage-level PubMedQA set that is not saturated: nDCG@10,
recall@10 and per-query latency of dense, BM25, hybrid (RRF), weighted fusion (the default weight,
the weight chosen on the tune half, and the sweep), each with the stemmed BM25 builds use now and
with the unstemmed BM25 of earlier builds (two indexes, same passages and vectors), paired 95%
intervals against dense at passage and doc level; and dense + ``--rerank MODEL`` (top 20
candidates, on a subset of queries: one model call per candidate), scored both ways.

    .venv/bin/python benchmarks/bench_rag_modes.py [--rerank qwen-0.5b,qwen-1.5b] [--rerank-queries 20] [--skip-modes]

What it measures. The corpus is every section of the 300 PubMedQA dev abstracts, each its own
passage (1,041 passages, ~57 words each; ``qa_to_beir(passages=True)``); the conclusion
(``long_answer``) is not in it. Two query sets over that corpus, both with the same qrels (every
passage of the row's own abstract, grade 1):
- ``question``: the PubMedQA question (~12 words), as a user would ask it;
- ``conclusion``: the abstract's conclusion (~41 words) as the query: find the evidence for a claim.
The rows are split by position: the first 150 are the *tune* half, where the fusion weight is
chosen (``fusion.DENSE_WEIGHT`` was chosen there); every reported figure is on the other 150
(*report*), so the default weight is not fitted to the figures it is judged by. The sweep on the
report half is printed as well, marked as an upper bound.

Limits. Relevance is "a section of the question's own abstract", not a person's judgement: a
passage of another abstract that also answers the question counts as irrelevant, and a short
methods section ("An administered questionnaire survey.") that shares nothing with the question
counts as relevant although no retriever can find it from the question, so no mode reaches 1.0:
the set ranks modes against each other, it is not an absolute quality figure. Grades are binary
because the file keeps no section labels to grade by (a grade from word overlap with the
conclusion would favour BM25 by construction). Biomedical text with rare technical terms is
favourable ground for BM25; 150 report queries give a standard error of roughly 0.02 on a mode's
nDCG@10, less on the paired difference between two modes (printed with a bootstrap interval).
The whole-abstract set of the previous version of this bench (each question's own abstract among
300, dense nDCG@10 0.99) was saturated: no mode could show a gain there.

Doc-level scoring (relevant = the row's abstract, an abstract ranked by its best passage: what a
SciFact-style set asks, and what the rerank prompt asks) is printed beside each passage-level
figure; with 300 abstracts it is saturated for dense (1.0 on the question report half), so it
shows harm, not gains.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from _load import LoadWatch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = Path.home() / ".cache" / "cellops-bench" / "rag-passages"
INDEX = "pubmedqa-passages"  # built as rag.build does now (stemmed BM25)
PLAIN_INDEX = "pubmedqa-passages-unstemmed"  # the same passages, BM25 as built before stemming
RESULTS_INDEX = "pubmedqa-results"  # one passage (the results section) per abstract: results_set
TUNE_ROWS = 150  # rows 0-149 tune the fusion weight; 150-299 are reported


def passage_set() -> dict[str, Any]:
    """Build (once: the index is a version) the passage index, stemmed (INDEX) and as every build
    before stemming did (PLAIN_INDEX, same vectors); -> query files per set and half."""
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = str(WORK / ".cellops")
    from cellops.kernels_lib import rag
    from cellops.kernels_lib.rag.evaluation import qa_to_beir

    src = SHARED / "rag" / "pubmedqa_dev.jsonl"
    out: dict[str, Any] = {}
    for qset, field in (("question", "question"), ("conclusion", "long_answer")):
        files = qa_to_beir(src, WORK / qset, passages=True, query_field=field)
        rows = [json.loads(x) for x in files["queries"].read_text().splitlines() if x.strip()]
        for half, part in (("tune", rows[:TUNE_ROWS]), ("report", rows[TUNE_ROWS:])):
            path = WORK / qset / f"queries-{half}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in part))
            out[qset, half] = path
        out["qrels"], out["corpus"] = files["qrels"], files["corpus"]
    print(rag.build(INDEX, {str(out["corpus"]): str(out["corpus"])}, progress=False)._summary(), flush=True)
    # the pre-stemming build, for comparison (its vectors are embedded once more: another name)
    print(rag.build(PLAIN_INDEX, {str(out["corpus"]): str(out["corpus"])}, progress=False, stem=False)._summary(),
          flush=True)
    return out


def results_set(sets: dict[str, Any]) -> Path:
    """The sibling-free doc-level check: each abstract is ONE passage, its last section (the
    results, ~100 words), so every query has exactly one relevant document and no other passage
    of its abstract to find (SciFact-like qrels; the passage set's "every section is relevant"
    cannot help a lever here). Same query files; -> its qrels (row -> row). Index RESULTS_INDEX."""
    from cellops.kernels_lib import rag

    src = SHARED / "rag" / "pubmedqa_dev.jsonl"
    rows = [json.loads(x) for x in src.read_text().splitlines() if x.strip()]
    folder = WORK / "results"
    folder.mkdir(parents=True, exist_ok=True)
    corpus, qrels = folder / "corpus.jsonl", folder / "qrels.tsv"
    corpus.write_text("".join(json.dumps({"_id": r["id"], "text": r["contexts"][-1]}) + "\n" for r in rows))
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{r['id']}\t{r['id']}\t1\n" for r in rows))
    print(rag.build(RESULTS_INDEX, {str(corpus): str(corpus)}, progress=False)._summary(), flush=True)
    return qrels


def per_query_ndcg(ranked: list[list[str]], rels: list[dict[str, int]]) -> list[float]:
    import pytrec_eval

    judged = {str(i): r for i, r in enumerate(rels)}
    run = {str(i): {d: float(len(docs) - r) for r, d in enumerate(docs)} for i, docs in enumerate(ranked) if docs}
    got = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10"}).evaluate(run)
    return [got.get(str(i), {}).get("ndcg_cut_10", 0.0) for i in range(len(rels))]


def paired_ci(a: list[float], b: list[float], n: int = 2000) -> tuple[float, float, float]:
    """Mean of b - a and a 95% bootstrap interval over queries (same queries in both)."""
    d = [y - x for x, y in zip(a, b, strict=True)]
    rnd = random.Random(0)
    means = sorted(statistics.fmean(rnd.choices(d, k=len(d))) for _ in range(n))
    return statistics.fmean(d), means[int(0.025 * n)], means[int(0.975 * n)]


def abstract_of(passage_id: str) -> str:
    return passage_id.rsplit("-", 1)[0]  # qa_to_beir names passage j of row ID "ID-j"


def ndcg_both(hits: list[list[Any]], qs: list[dict[str, Any]], rel: dict[str, dict[str, int]]) -> tuple[list[float], list[float]]:
    """Per-query nDCG@10 with passage-level qrels (every passage of the own abstract) and with
    doc-level ones (the abstract, ranked by its best passage: what a SciFact-style set asks)."""
    from cellops.kernels_lib.rag.evaluation import _doc_ranking

    passage = per_query_ndcg([_doc_ranking(h, 10) for h in hits], [rel[q["id"]] for q in qs])
    docs = [list(dict.fromkeys(abstract_of(x.doc_id) for x in h))[:10] for h in hits]
    return passage, per_query_ndcg(docs, [{q["id"]: 1} for q in qs])


def rankings(qfile: Path, qrels: Path, mode: str, weight: float, index: str = INDEX) -> tuple[list[float], list[float]]:
    """Per-query nDCG@10 of one mode, passage- and doc-level, from the code %rag eval runs."""
    from cellops.kernels_lib.rag.evaluation import load_qrels, load_queries
    from cellops.kernels_lib.rag.retrieve import search_many
    from cellops.kernels_lib.rag.store import open_index
    from cellops.kernels_lib.workspace import get_workspace

    qs = load_queries(str(qfile))
    hits = search_many(open_index(index, get_workspace()), [q["text"] for q in qs], 30, mode, weight=weight)
    return ndcg_both(hits, qs, load_qrels(str(qrels), qs))


def tune(sets: dict[str, Any]) -> None:
    from cellops.kernels_lib.rag import evaluate, fusion

    print("\n== tune half (rows 0-149): the fusion weight sweep (dense weight: nDCG@10)")
    for qset in ("question", "conclusion"):
        for index in (PLAIN_INDEX, INDEX):
            t = evaluate(index, str(sets[qset, "tune"]), str(sets["qrels"]), modes=("dense", "bm25", "weighted"))
            print(f"{qset:10} {index:26} dense {t['dense/ndcg@10']:.4f} bm25 {t['bm25/ndcg@10']:.4f} | "
                  + "  ".join(f"{w}: {v:.4f}" for w, v in t.sweep.items()) + f" -> best {t['fusion/best_weight']}",
                  flush=True)
    print(f"fusion.DENSE_WEIGHT = {fusion.DENSE_WEIGHT}")


def report(sets: dict[str, Any]) -> None:
    from cellops.kernels_lib.rag import evaluate, fusion

    print("\n== report half (rows 150-299): nDCG@10 mean, and minus dense with a paired 95% CI")
    for qset in ("question", "conclusion"):
        for index in (PLAIN_INDEX, INDEX):
            r = evaluate(index, str(sets[qset, "report"]), str(sets["qrels"]))
            print(f"\n-- {qset} queries ({r.n_queries}), {index}:\n{r._repr_mimebundle_()['text/plain']}", flush=True)
            dense = rankings(sets[qset, "report"], sets["qrels"], "dense", fusion.DENSE_WEIGHT, index)
            for mode in ("bm25", "hybrid", "weighted"):
                other = rankings(sets[qset, "report"], sets["qrels"], mode, fusion.DENSE_WEIGHT, index)
                for level, a, b in (("passage", dense[0], other[0]), ("doc", dense[1], other[1])):
                    mean, lo, hi = paired_ci(a, b)
                    print(f"   {level:7} {mode:8} {statistics.fmean(b):.4f} (dense {statistics.fmean(a):.4f}): "
                          f"{mean:+.4f} (95% CI {lo:+.4f} .. {hi:+.4f})")


def report_results(sets: dict[str, Any]) -> None:
    """The modes on the sibling-free doc-level set (results_set): tune-half sweep, then the report
    half with paired CIs against dense, through the code %rag eval runs."""
    from cellops.kernels_lib.rag import evaluate, fusion

    qrels = results_set(sets)
    print("\n== sibling-free doc-level set (one passage per abstract): tune sweep, then report half")
    for qset in ("question", "conclusion"):
        t = evaluate(RESULTS_INDEX, str(sets[qset, "tune"]), str(qrels), modes=("dense", "bm25", "weighted"))
        print(f"{qset:10} tune: dense {t['dense/ndcg@10']:.4f} | " + "  ".join(f"{w}: {v:.4f}" for w, v in t.sweep.items()))
        r = evaluate(RESULTS_INDEX, str(sets[qset, "report"]), str(qrels))
        print(f"-- {qset} queries ({r.n_queries}), report half:\n{r._repr_mimebundle_()['text/plain']}", flush=True)
        dense = rankings(sets[qset, "report"], qrels, "dense", fusion.DENSE_WEIGHT, RESULTS_INDEX)[0]
        for mode in ("bm25", "hybrid", "weighted"):
            other = rankings(sets[qset, "report"], qrels, mode, fusion.DENSE_WEIGHT, RESULTS_INDEX)[0]
            mean, lo, hi = paired_ci(dense, other)
            print(f"   {mode:8} {statistics.fmean(other):.4f} (dense {statistics.fmean(dense):.4f}): "
                  f"{mean:+.4f} (95% CI {lo:+.4f} .. {hi:+.4f})")


def rerank_arm(sets: dict[str, Any], model: str, n: int, depth: int) -> None:
    """Dense top ``depth`` rescored by ``model`` on the first ``n`` report question queries,
    scored against both qrels: the doc-level one asks what the rerank prompt asks (does this
    passage answer the question), the passage-level one also counts background and methods."""
    from cellops.kernels_lib.models import get_llm
    from cellops.kernels_lib.rag.evaluation import load_qrels, load_queries
    from cellops.kernels_lib.rag.rerank import rerank
    from cellops.kernels_lib.rag.retrieve import search_many
    from cellops.kernels_lib.rag.store import open_index
    from cellops.kernels_lib.workspace import get_workspace

    qs = load_queries(str(sets["question", "report"]))[:n]
    rel = load_qrels(str(sets["qrels"]), qs)
    get_llm(model)  # loaded outside the timings
    dense = search_many(open_index(INDEX, get_workspace()), [q["text"] for q in qs], depth, "dense")
    t0, reranked, per_query = time.perf_counter(), [], []
    for q, hits in zip(qs, dense, strict=True):
        t1 = time.perf_counter()
        reranked.append(rerank(q["text"], hits, model, len(hits), depth=depth))
        per_query.append(time.perf_counter() - t1)
    (dp, dd), (rp, rd) = ndcg_both(dense, qs, rel), ndcg_both(reranked, qs, rel)
    print(f"\n-- dense + rerank {model}, top {depth}, first {len(qs)} report question queries "
          f"({time.perf_counter() - t0:.0f} s; p50 {statistics.median(per_query) * 1000:.0f} ms per query, "
          f"{statistics.median(per_query) * 1000 / depth:.0f} ms per candidate)")
    for level, a, b in (("passage", dp, rp), ("doc", dd, rd)):
        mean, lo, hi = paired_ci(a, b)
        print(f"   {level:7} dense {statistics.fmean(a):.4f} rerank {statistics.fmean(b):.4f}: "
              f"{mean:+.4f} (95% CI {lo:+.4f} .. {hi:+.4f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerank", default="", help="comma-separated model URIs for the rerank arm (e.g. qwen-0.5b,qwen-1.5b)")
    ap.add_argument("--rerank-queries", type=int, default=20, help="report-half question queries reranked")
    ap.add_argument("--depth", type=int, default=20, help="dense candidates rescored per query")
    ap.add_argument("--skip-modes", action="store_true", help="only the rerank arm (and --results)")
    ap.add_argument("--results", action="store_true", help="also the sibling-free doc-level set")
    args = ap.parse_args()
    sets = passage_set()
    if not args.skip_modes:
        tune(sets)
        report(sets)
    if args.results:
        report_results(sets)
    for model in [m for m in args.rerank.split(",") if m]:
        rerank_arm(sets, model, args.rerank_queries, args.depth)


if __name__ == "__main__":
    with LoadWatch():
        main()
