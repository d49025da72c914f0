"""Retrieval modes side by side on PubMedQA dev (contexts as the corpus, each question's own
abstract as its relevant document): nDCG@10 / recall@10 and per-query latency of dense, BM25,
hybrid (RRF), weighted fusion (at the default weight and the best of the sweep) and dense +
``--rerank MODEL`` on a subset (one model call per candidate, so it is slow).

    .venv/bin/python benchmarks/bench_rag_modes.py [--limit 300] [--rerank qwen-1.5b] [--rerank-queries 30]

NQ-open dev has questions and answers but no corpus, so it is not a retrieval set here.
The weighted fusion's weight reported as "best" is chosen on these same queries (an upper
bound); the default weight is the honest figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from _load import LoadWatch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--rerank", help="model URI for the rerank arm (e.g. qwen-1.5b)")
    ap.add_argument("--rerank-queries", type=int, default=30)
    args = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    # a persistent workspace and corpus: the index is a version, so a second run does not embed again
    tmp = Path.home() / ".cache" / "cellops-bench" / "rag-modes"
    os.environ["CELLOPS_HOME"] = str(tmp / ".cellops")
    from cellops.kernels_lib import rag
    from cellops.kernels_lib.rag.evaluation import (
        _doc_ranking,
        evaluate,
        load_qrels,
        load_queries,
        qa_to_beir,
        retrieval_metrics,
    )
    from cellops.kernels_lib.rag.retrieve import search_many
    from cellops.kernels_lib.rag.store import open_index

    files = qa_to_beir(SHARED / "rag" / "pubmedqa_dev.jsonl", tmp / "beir", limit=args.limit)
    t0 = time.perf_counter()
    rag.build("pubmedqa", {str(files["corpus"]): str(files["corpus"])})
    print(f"built the index of {args.limit} abstracts in {time.perf_counter() - t0:.0f} s")
    res = evaluate("pubmedqa", str(files["queries"]), str(files["qrels"]), k=10)
    print({k: v for k, v in res.items() if k.endswith(("ndcg@10", "recall@10")) or k.startswith("fusion/")})
    from cellops.kernels_lib.workspace import get_workspace

    index = open_index("pubmedqa", get_workspace())
    qs = load_queries(str(files["queries"]))
    texts = [q["text"] for q in qs]
    rows = []
    for mode in ("dense", "bm25", "hybrid", "weighted"):
        lat = []
        for t in texts[:100]:  # one query at a time, as %%rag ask does
            t1 = time.perf_counter()
            search_many(index, [t], 10, mode)
            lat.append((time.perf_counter() - t1) * 1000)
        rows.append((mode, res[f"{mode}/ndcg@10"], res[f"{mode}/recall@10"], statistics.median(lat)))
    print(f"weighted fusion: best weight on these queries {res['fusion/best_weight']} -> "
          f"nDCG@10 {res['fusion/best_ndcg@10']}")
    if args.rerank:
        rels = load_qrels(str(files["qrels"]), qs)
        sub = qs[: args.rerank_queries]
        dense_rank, rr_rank, lat = [], [], []
        from cellops.kernels_lib.rag.rerank import rerank

        for q in sub:
            hits = search_many(index, [q["text"]], 30, "dense")[0]
            dense_rank.append(_doc_ranking(hits, 10))
            t1 = time.perf_counter()
            rr_rank.append(_doc_ranking(rerank(q["text"], hits, args.rerank, 30), 10))
            lat.append((time.perf_counter() - t1) * 1000)
        r_rel = [rels.get(q["id"], {}) for q in sub]
        d = retrieval_metrics(dense_rank, r_rel, 10)
        r = retrieval_metrics(rr_rank, r_rel, 10)
        rows.append((f"dense (first {len(sub)} queries)", d["ndcg@10"], d["recall@10"], float("nan")))
        rows.append((f"dense+rerank {args.rerank} (same)", r["ndcg@10"], r["recall@10"], statistics.median(lat)))
    print(f"\n{'mode':40} {'nDCG@10':>8} {'recall@10':>9} {'p50 ms':>8}")
    for mode, n, rc, ms in rows:
        print(f"{mode:40} {n:8.4f} {rc:9.4f} {ms:8.1f}")


if __name__ == "__main__":
    with LoadWatch():
        main()
