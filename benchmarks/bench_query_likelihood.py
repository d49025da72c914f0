"""Query-likelihood rescoring (UPR, Sachan et al. 2022, arXiv:2204.07496) of the fused top
candidates: for each passage, the mean log-probability of the question's tokens after
"Passage: ... Write a question that this passage answers." under a llama.cpp model, no sampling;
the rescored order mixes it with the fused score, both min-max normalised per query,
``(1 - a) * fused + a * likelihood``, for a sweep of ``a`` (``a = 1`` is the likelihood alone).
A lever measured for issue 18 point 6 beside the pointwise P(yes) rerank (bench_rerank.py), not
a mode of cellops.

    .venv/bin/python benchmarks/bench_query_likelihood.py [--model qwen-0.5b] [--queries 50] [--depth 10]

The sibling-free doc-level set of bench_rag_modes.py (each abstract ONE passage, its results
section; one relevant document per query), tune-half question queries, weighted fusion (W 0.6)
top ``--depth`` rescored. Reported: nDCG@10 of dense, weighted and each mix, with the paired 95%
interval against dense, and ms per candidate.

Measured 2026-12-04 04:46-04:55 (session 15), qwen-0.5b, the first 50 tune queries x 10
candidates, load 1.4-1.8 (the bench itself): 1.0 s per candidate (~250 prompt tokens); dense
0.8677, weighted 0.8436; likelihood alone 0.7891 (-0.079 vs dense, -0.135..-0.030); the best mix
(a 0.3-0.4) 0.8513 (-0.017). The 0.5B model's question likelihood is a worse relevance signal
than the embedding, so the lever was not taken further (qwen-1.5b would cost ~3 s per candidate).
This bench's own run (05:05-05:24, NOISY: load 2.0-2.6, other processes kept 1.0 core busy) gave
the same nDCG figures to the fourth digit, at 2.0 s per candidate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _load import LoadWatch
from bench_rag_modes import RESULTS_INDEX, paired_ci, passage_set, per_query_ndcg, results_set

USER = "Passage: {passage}\n\nWrite a question that this passage answers."
MIXES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class QuestionLikelihood:
    """Mean log P(question tokens | passage prompt) from a llama.cpp context of its own."""

    def __init__(self, model: str) -> None:
        import llama_cpp

        from cellops.kernels_lib.models import get_llm

        self.chat = get_llm(model)  # for its chat template and passage clipping
        self.llama = llama_cpp.Llama(model_path=str(self.chat.path), n_ctx=1024, n_batch=512,
                                     n_threads=2, verbose=False, seed=0)

    def __call__(self, question: str, passage: str) -> float:
        import llama_cpp

        msgs = [{"role": "user", "content": USER.format(passage=self.chat.clip_tokens(passage, 256))}]
        prompt, _ = self.chat.render(msgs)
        if not prompt.rstrip().endswith("assistant"):
            raise SystemExit("this bench expects a chat template that ends with the assistant header (ChatML)")
        llama = self.llama
        head = llama.tokenize(prompt.encode(), add_bos=True, special=True)
        q = llama.tokenize(question.encode(), add_bos=False, special=False)
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        for batch, past, every in ((head[:-1], 0, False), ([head[-1], *q[:-1]], len(head) - 1, True)):
            llama._batch.reset()
            llama._batch.set_batch(batch=batch, n_past=past, logits_all=every)
            llama._ctx.decode(llama._batch)
        total = 0.0
        for i, t in enumerate(q):
            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama._ctx.ctx, i), shape=(llama.n_vocab(),))
            row = row.astype(np.float64)
            top = row.max()
            total += row[t] - top - np.log(np.exp(row - top).sum())
        return total / len(q)


def minmax(xs: list[float]) -> list[float]:
    lo, hi = min(xs), max(xs)
    return [(x - lo) / (hi - lo) if hi > lo else 0.0 for x in xs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen-0.5b")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--depth", type=int, default=10)
    args = ap.parse_args()
    sets = passage_set()
    qrels = results_set(sets)
    from cellops.kernels_lib.rag.evaluation import load_qrels, load_queries
    from cellops.kernels_lib.rag.retrieve import search_many
    from cellops.kernels_lib.rag.store import open_index
    from cellops.kernels_lib.workspace import get_workspace

    qs = load_queries(str(sets["question", "tune"]))[: args.queries]
    rel = load_qrels(str(qrels), qs)
    rels = [rel[q["id"]] for q in qs]
    index = open_index(RESULTS_INDEX, get_workspace())
    fused = search_many(index, [q["text"] for q in qs], args.depth, "weighted", weight=0.6)
    dense = search_many(index, [q["text"] for q in qs], args.depth, "dense")
    score = QuestionLikelihood(args.model)
    t0, likes = time.perf_counter(), []
    for q, hits in zip(qs, fused, strict=True):
        likes.append([score(q["text"], h.text) for h in hits])
    per_candidate = (time.perf_counter() - t0) * 1000 / sum(len(h) for h in fused)

    def ndcg(orders: list[list[str]]) -> list[float]:
        return per_query_ndcg([list(dict.fromkeys(o))[:10] for o in orders], rels)

    base = ndcg([[h.doc_id for h in d] for d in dense])
    print(f"\n{args.model}: {len(qs)} tune question queries x {args.depth} candidates, {per_candidate:.0f} ms per candidate")
    print(f"dense {statistics.fmean(base):.4f}  weighted {statistics.fmean(ndcg([[h.doc_id for h in f] for f in fused])):.4f}")
    for a in MIXES:
        orders = []
        for hits, like in zip(fused, likes, strict=True):
            mixed = [(1 - a) * f + a * u for f, u in zip(minmax([h.score for h in hits]), minmax(like), strict=True)]
            orders.append([h.doc_id for _, h in sorted(zip(mixed, hits, strict=True), key=lambda t: (-t[0], t[1].rank))])
        got = ndcg(orders)
        mean, lo, hi = paired_ci(base, got)
        print(f"a {a:.1f}: {statistics.fmean(got):.4f}  vs dense {mean:+.4f} ({lo:+.4f} .. {hi:+.4f})", flush=True)


if __name__ == "__main__":
    with LoadWatch():
        main()
