"""Weighted fusion of dense and BM25 results: each retriever's scores min-max normalised over its
own candidate pool, then ``w * dense + (1 - w) * bm25``.

Reciprocal-rank fusion (``--hybrid``) weighs both retrievers equally and ignores how far apart
their scores are, so it ranks below dense alone when BM25 is the weaker retriever (short
questions over abstracts, paraphrased queries). A normalised score combination keeps the
margins and lets the stronger retriever weigh more. This is the convex combination that Bruch,
Gai and Ingber ("An Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS 2023,
doi:10.1145/3596512, arXiv:2210.11934) find better than RRF in and out of domain, largely insensitive to the choice
of score normalisation, and sample-efficient: a small set of queries tunes its one weight.

DENSE_WEIGHT was chosen that way, on data the reported figures do not use: the sweep on the tune
half (PubMedQA dev rows 0-149, question queries over the 1,041 abstract passages,
benchmarks/bench_rag_modes.py) peaked at 0.6 with the unstemmed BM25 of earlier builds (nDCG@10
0.869; 0.7: 0.866, dense alone 0.860) and again with the stemmed BM25 builds use now (0.868;
0.5: 0.865, 0.7: 0.868; re-measured at POOL 50 in session 9); the conclusion queries peak at
0.4-0.5. On that tune half (stemmed,
question queries) z-score normalisation peaked as high as min-max (0.868 at 0.6), a theoretical
minimum of 0 for both scores lower (0.866 at 0.8), and candidate pools of 10 to 100 per retriever
gave 0.866-0.868 at 0.6 (Bruch et al. report the same insensitivity), so the min-max form stays
and the pool is fixed (POOL). ``%rag eval`` scores every
weight of SWEEP on the user's own queries and names the best (``fusion/best_weight``), for
``--weighted W``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DENSE_WEIGHT = 0.6
# Candidates each retriever gives a fused search, whatever k asks for (k only when larger): min-max
# normalisation is over the pool, so a pool that grew with k made %%rag ask (k=4) and %rag eval
# (which scores k x 3 passages) rank differently; with one pool an ask's top k is the prefix of
# the deeper ranking eval scores. 50: the pool asks always had (10-100 move the tune figure <0.003).
POOL = 50
SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def pool(k: int) -> int:
    """Candidates each retriever gives a fused search for ``k`` hits."""
    return max(k, POOL)


def _normalised(ids: Sequence[int], scores: Sequence[float]) -> dict[int, float]:
    pairs = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if int(i) >= 0 and np.isfinite(s)]
    if not pairs:
        return {}
    lo, hi = min(s for _, s in pairs), max(s for _, s in pairs)
    span = hi - lo
    return {i: (s - lo) / span if span > 0 else 1.0 for i, s in pairs}


def weighted(dense: tuple[Sequence[int], Sequence[float]], bm25: tuple[Sequence[int], Sequence[float]],
             k: int, weight: float = DENSE_WEIGHT) -> list[tuple[int, float]]:
    """Top ``k`` (id, fused score); a candidate missing from one pool scores 0 there."""
    d, b = _normalised(*dense), _normalised(*bm25)
    fused = {i: weight * d.get(i, 0.0) + (1 - weight) * b.get(i, 0.0) for i in d.keys() | b.keys()}
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
