"""Pseudo-relevance feedback for bench_rag_levers.py: a second retrieval round that starts from
the first round's top passages, for queries whose words or embedding reach only part of what is
relevant. Measured there and not adopted into ``rag.search`` (see docs/rag.md, "Levers").

- Dense (Rocchio on embeddings): the query vector moves toward the mean vector of its top
  ``docs`` passages, ``q' = q + beta * mean(v_1..v_docs)``, renormalised, and is searched again
  (Rocchio 1971; on dense retrievers: Li et al., "Pseudo Relevance Feedback with Deep Language
  Models and Dense Retrievers: Successes and Pitfalls", ACM TOIS 2023, arXiv:2108.11044).
- BM25 (RM3, Lavrenko and Croft 2001; Anserini's defaults): the top ``docs`` passages' term
  distributions, each weighted by its normalised first-round score, give ``terms`` expansion
  terms; the query becomes ``lam * original + (1 - lam) * expansion`` (both L1-normalised) and
  BM25 scores it as a weighted bag of terms (the sum of each term's BM25 contribution times its
  weight), from the index's own per-term score matrix.

Neither uses document identity or the corpus layout: a feedback passage pulls in whatever is
like it, whichever document it comes from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Feedback:
    docs: int = 3  # first-round passages fed back
    beta: float = 0.5  # Rocchio: weight of their mean vector beside the query's (weight 1)
    terms: int = 10  # RM3: expansion terms kept
    lam: float = 0.5  # RM3: weight of the original query terms


def rocchio(queries: np.ndarray, first_ids: np.ndarray, vectors: np.ndarray, fb: Feedback) -> np.ndarray:
    """Each query vector moved toward the mean of its first ``fb.docs`` passages, L2-normalised."""
    q = np.asarray(queries, np.float32).reshape(len(first_ids), -1).copy()
    for i, row in enumerate(first_ids):
        top = [int(j) for j in row[:fb.docs] if int(j) >= 0]
        if top:
            q[i] += fb.beta * np.asarray(vectors[top], np.float32).mean(axis=0)
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


def rm3_terms(query: list[str], feedback: Sequence[list[str]], scores: Sequence[float],
              fb: Feedback) -> dict[str, float]:
    """Weighted query terms: ``lam`` * the query's own + ``(1 - lam)`` * the relevance model of
    the feedback passages (tokenized as the index is), each passage weighted by its score."""
    own = Counter(query)
    total = sum(own.values())
    weights = {t: fb.lam * n / total for t, n in own.items()} if total else {}
    top = np.asarray(scores[:len(feedback)], np.float64)
    if not len(feedback) or top.sum() <= 0:
        return weights
    rel: Counter[str] = Counter()
    for tokens, s in zip(feedback, top / top.sum(), strict=True):
        for t, n in Counter(tokens).items():
            rel[t] += s * n / max(len(tokens), 1)
    kept = rel.most_common(fb.terms)
    mass = sum(w for _, w in kept)
    for t, w in kept:
        weights[t] = weights.get(t, 0.0) + (1 - fb.lam) * w / mass
    return weights


def weighted_bm25(retriever: object, terms: dict[str, float], n: int) -> np.ndarray:
    """BM25 scores of all ``n`` passages for a weighted bag of terms (bm25s' CSC score matrix:
    column t holds term t's contribution to each passage that contains it)."""
    sc = retriever.scores  # type: ignore[attr-defined]
    vocab = retriever.vocab_dict  # type: ignore[attr-defined]
    data, indices, indptr = sc["data"], sc["indices"], sc["indptr"]
    out = np.zeros(n, np.float32)
    for t, w in terms.items():
        tid = vocab.get(t)
        if tid is not None and tid + 1 < len(indptr):
            lo, hi = indptr[tid], indptr[tid + 1]
            np.add.at(out, indices[lo:hi], w * data[lo:hi])
    return out
