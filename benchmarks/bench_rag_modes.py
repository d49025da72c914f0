"""Retrieval modes side by side on a passage-level PubMedQA set that is not saturated: nDCG@10,
recall@10 and per-query latency of dense, BM25, hybrid (RRF), weighted fusion (the default weight,
the weight chosen on the tune half, and the sweep) and dense + ``--rerank MODEL`` (top 20
candidates, on a subset of queries: one model call per candidate).

    .venv/bin/python benchmarks/bench_rag_modes.py [--rerank qwen-0.5b,qwen-1.5b] [--rerank-queries 20]

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
INDEX = "pubmedqa-passages"
TUNE_ROWS = 150  # rows 0-149 tune the fusion weight; 150-299 are reported


def passage_set() -> dict[str, Any]:
    """Build (once: the index is a version) the passage index; -> query files per set and half."""
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
    v = rag.build(INDEX, {str(out["corpus"]): str(out["corpus"])}, progress=False)
    print(v._summary(), flush=True)
    return out


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


def rankings(qfile: Path, qrels: Path, mode: str, weight: float) -> tuple[list[float], Any]:
    """Per-query nDCG@10 of one mode (for paired intervals) from the same code %rag eval runs."""
    from cellops.kernels_lib.rag.evaluation import _doc_ranking, load_qrels, load_queries
    from cellops.kernels_lib.rag.retrieve import search_many
    from cellops.kernels_lib.rag.store import open_index
    from cellops.kernels_lib.workspace import get_workspace

    qs = load_queries(str(qfile))
    rel = load_qrels(str(qrels), qs)
    hits = search_many(open_index(INDEX, get_workspace()), [q["text"] for q in qs], 30, mode, weight=weight)
    return per_query_ndcg([_doc_ranking(h, 10) for h in hits], [rel[q["id"]] for q in qs]), qs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerank", default="", help="comma-separated model URIs for the rerank arm (e.g. qwen-0.5b,qwen-1.5b)")
    ap.add_argument("--rerank-queries", type=int, default=20, help="report-half question queries reranked")
    ap.add_argument("--depth", type=int, default=20, help="dense candidates rescored per query")
    args = ap.parse_args()
    sets = passage_set()
    from cellops.kernels_lib.rag import evaluate, fusion

    print("\n== tune half (rows 0-149): the fusion weight sweep (dense weight: nDCG@10)")
    chosen = {}
    for qset in ("question", "conclusion"):
        t = evaluate(INDEX, str(sets[qset, "tune"]), str(sets["qrels"]), modes=("dense", "bm25", "weighted"))
        chosen[qset] = t["fusion/best_weight"]
        print(f"{qset:10} dense {t['dense/ndcg@10']:.4f} bm25 {t['bm25/ndcg@10']:.4f} | "
              + "  ".join(f"{w}: {v:.4f}" for w, v in t.sweep.items()) + f" -> best {chosen[qset]}", flush=True)
    print(f"fusion.DENSE_WEIGHT = {fusion.DENSE_WEIGHT} (chosen on the question tune half: {chosen['question']})")

    print("\n== report half (rows 150-299)")
    for qset in ("question", "conclusion"):
        r = evaluate(INDEX, str(sets[qset, "report"]), str(sets["qrels"]))
        print(f"\n-- {qset} queries ({r.n_queries}):\n{r._repr_mimebundle_()['text/plain']}", flush=True)
        dense, _ = rankings(sets[qset, "report"], sets["qrels"], "dense", fusion.DENSE_WEIGHT)
        for mode in ("bm25", "hybrid", "weighted"):
            other, _ = rankings(sets[qset, "report"], sets["qrels"], mode, fusion.DENSE_WEIGHT)
            mean, lo, hi = paired_ci(dense, other)
            print(f"   {mode} - dense: {mean:+.4f} nDCG@10 (95% CI {lo:+.4f} .. {hi:+.4f})")
    for model in [m for m in args.rerank.split(",") if m]:
        sub = WORK / "question" / f"queries-report-first{args.rerank_queries}.jsonl"
        lines = sets["question", "report"].read_text().splitlines()[: args.rerank_queries]
        sub.write_text("\n".join(lines) + "\n")
        t0 = time.perf_counter()
        r = evaluate(INDEX, str(sub), str(sets["qrels"]), modes=("dense",), rerank=model, rerank_depth=args.depth)
        print(f"\n-- dense + rerank {model}, top {args.depth}, first {r.n_queries} report question queries "
              f"({time.perf_counter() - t0:.0f} s):\n{r._repr_mimebundle_()['text/plain']}", flush=True)


if __name__ == "__main__":
    with LoadWatch():
        main()
