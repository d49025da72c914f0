"""Profile of the pointwise rerank: ms per candidate, and the ranking it gives, for three prompt
layouts on the same queries, candidates and model (bench_rag_modes.py's passage index, report-half
question queries, dense top ``--depth``):

- ``before``: question and passage in the user message, the passage cut at 1,500 characters (the
  rerank up to this session);
- ``now``: ``rag.rerank.p_yes``: the same layout, the passage cut at 256 tokens;
- ``system``: the question moved into the system message, so it is evaluated once per query
  and no question token is evaluated again for a candidate (with the question first in the user
  message, the chunk it shares with the passage is).

Per query each layout scores all candidates in one block (so the KV cache holds that layout's
question, as in real use; the first candidate of a block pays for the question); the order of
the layouts rotates from query to query. Reported: median ms per candidate over the blocks,
prompt tokens per candidate, nDCG@10 of each layout's order, and how far its P(yes) lies from
``before``'s.

    .venv/bin/python benchmarks/bench_rerank.py [--model qwen-0.5b] [--queries 6] [--depth 20]

Measured 2026-12-01 17:13-17:45 (NOISY: load 8.6 -> 8.1 on 2 cores; other processes kept 1.65
cores busy), qwen-0.5b, 6 queries x 20 candidates, median prompt 127 tokens, with an earlier
version whose third arm also evaluated each message in whole 128-token chunks: ms per candidate
before 5,589, system 5,362, system + whole chunks 5,315 (the spread between queries was
2,900-6,300 ms, so these are equal within the noise); nDCG@10 of the reranked top 20: before
0.477, system 0.430, system + whole chunks 0.423; dense order 0.845. The layout stayed as before.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from _load import LoadWatch
from bench_rag_modes import INDEX, passage_set, per_query_ndcg

BEFORE_SYSTEM = "You judge search results. Reply with one word: yes or no."
BEFORE_PROMPT = "Question: {question}\n\nPassage: {passage}\n\nDoes the passage answer the question? Answer yes or no."


def layouts(llm: Any) -> dict[str, Callable[[str, str], float]]:
    from cellops.kernels_lib.rag import rerank as rr

    def before(q: str, passage: str) -> float:
        msgs = [{"role": "system", "content": BEFORE_SYSTEM},
                {"role": "user", "content": BEFORE_PROMPT.format(question=q, passage=passage[:1500])}]
        return llm.p_yes(msgs)

    def system(q: str, passage: str) -> float:
        msgs = [{"role": "system", "content": f"{BEFORE_SYSTEM}\n\nQuestion: {q}"},
                {"role": "user", "content": "Passage: " + llm.clip_tokens(passage, rr.MAX_PASSAGE_TOKENS)
                 + "\n\nDoes the passage answer the question? Answer yes or no."}]
        return llm.p_yes(msgs)

    return {"before": before, "now": lambda q, p: rr.p_yes(llm, q, p), "system": system}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen-0.5b")
    ap.add_argument("--queries", type=int, default=6)
    ap.add_argument("--depth", type=int, default=20)
    args = ap.parse_args()
    sets = passage_set()
    from cellops.kernels_lib.models import get_llm
    from cellops.kernels_lib.rag import rerank as rr
    from cellops.kernels_lib.rag.evaluation import _doc_ranking, load_qrels, load_queries
    from cellops.kernels_lib.rag.retrieve import search_many
    from cellops.kernels_lib.rag.store import open_index
    from cellops.kernels_lib.workspace import get_workspace

    qs = load_queries(str(sets["question", "report"]))[: args.queries]
    rel = load_qrels(str(sets["qrels"]), qs)
    index = open_index(INDEX, get_workspace())
    cands = search_many(index, [q["text"] for q in qs], args.depth, "dense")
    llm = get_llm(args.model)
    arms = layouts(llm)
    names = list(arms)
    ms: dict[str, list[float]] = {n: [] for n in names}
    scores: dict[str, list[list[float]]] = {n: [] for n in names}
    for qi, (q, hits) in enumerate(zip(qs, cands, strict=True)):
        for n in names[qi % len(names):] + names[: qi % len(names)]:
            t0 = time.perf_counter()
            scores[n].append([arms[n](q["text"], h.text) for h in hits])
            ms[n].append((time.perf_counter() - t0) * 1000 / len(hits))
    tokens = statistics.median(len(llm._prompt_tokens(rr.messages(q["text"], h.text))[0])
                               for q, hits in zip(qs, cands, strict=True) for h in hits)
    rels = [rel[q["id"]] for q in qs]
    print(f"\n{args.model}: {len(qs)} queries x {args.depth} candidates, median prompt {tokens:.0f} tokens per candidate")
    print(f"{'layout':15} {'ms/candidate':>13} {'nDCG@10':>8} {'mean |dP| vs before':>20}")
    for n in names:
        order = [_doc_ranking([h for _, h in sorted(zip(s, hits, strict=True), key=lambda t: (-t[0], t[1].rank))], 10)
                 for s, hits in zip(scores[n], cands, strict=True)]
        ndcg = statistics.fmean(per_query_ndcg(order, rels))
        dp = statistics.fmean(abs(a - b) for sa, sb in zip(scores[n], scores["before"], strict=True)
                              for a, b in zip(sa, sb, strict=True))
        print(f"{n:15} {statistics.median(ms[n]):13.1f} {ndcg:8.4f} {dp:20.4f}")
    dense = [_doc_ranking(h, 10) for h in cands]
    print(f"{'dense order':15} {'':13} {statistics.fmean(per_query_ndcg(dense, rels)):8.4f}")
    print(json.dumps({n: [round(x, 1) for x in v] for n, v in ms.items()}))


if __name__ == "__main__":
    with LoadWatch():
        main()
