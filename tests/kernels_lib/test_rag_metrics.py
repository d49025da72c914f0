"""Retrieval metrics as BEIR computes them (trec_eval through pytrec_eval, linear gains): a graded
case worked by hand from trec_eval's definitions, and agreement with pytrec_eval, called the way
BEIR calls it, on random graded qrels."""

from __future__ import annotations

import math
import random

import pytest
import pytrec_eval

from cellops.kernels_lib.rag.evaluation import retrieval_metrics


def by_definition(docs: list[str], rel: dict[str, int], k: int) -> dict[str, float]:
    """trec_eval's measures for one query, written out: gain = the grade (linear)."""
    relevant = {d for d, s in rel.items() if s > 0}
    top = docs[:k]
    dcg = sum(rel.get(d, 0) / math.log2(r + 2) for r, d in enumerate(top))
    ideal = sorted((s for s in rel.values() if s > 0), reverse=True)[:k]
    hits = [r for r, d in enumerate(top) if d in relevant]
    return {
        f"ndcg@{k}": dcg / sum(s / math.log2(r + 2) for r, s in enumerate(ideal)),
        f"map@{k}": sum((i + 1) / (r + 1) for i, r in enumerate(hits)) / len(relevant),
        f"recall@{k}": len(hits) / len(relevant),
        f"p@{k}": len(hits) / k,
        f"mrr@{k}": 1 / (hits[0] + 1) if hits else 0.0,
    }


def test_graded_case_by_hand() -> None:
    ranked = [["d3", "d1", "d4", "d2"], ["x", "y"], [], ["a"]]
    rels = [{"d1": 2, "d2": 1, "d3": 0}, {"y": 3, "z": 1}, {"e": 1}, {"a": 0}]
    m = retrieval_metrics(ranked, rels, 3)
    # query 1: gains 0, 2, 0 at ranks 1-3 -> DCG 2/log2(3); ideal 2, 1 -> 2 + 1/log2(3)
    q1 = {"ndcg@3": (2 / math.log2(3)) / (2 + 1 / math.log2(3)), "map@3": (1 / 2) / 2,
          "recall@3": 1 / 2, "p@3": 1 / 3, "mrr@3": 1 / 2}
    # query 2: gain 3 at rank 2 -> 3/log2(3); ideal 3, 1 -> 3 + 1/log2(3)
    q2 = {"ndcg@3": (3 / math.log2(3)) / (3 + 1 / math.log2(3)), "map@3": (1 / 2) / 2,
          "recall@3": 1 / 2, "p@3": 1 / 3, "mrr@3": 1 / 2}
    # query 3 retrieved nothing: all 0; query 4 has no relevant document: left out (trec_eval)
    for name in q1:
        assert m[name] == pytest.approx((q1[name] + q2[name] + 0) / 3, abs=1e-4), name
    assert q1["ndcg@3"] == pytest.approx(0.4796, abs=1e-4)  # exponential gains (2^rel - 1) gave 0.5213
    assert m["recall@1"] == 0.0 and m["ndcg@10"] > m["ndcg@3"] and set(m) == {
        "recall@1", "recall@3", "mrr@3", "ndcg@10", "ndcg@3", "map@3", "p@3"}
    assert retrieval_metrics([["a"]], [{"a": 0}], 3) == {}


@pytest.mark.parametrize("k", [5, 10])
def test_agrees_with_pytrec_eval_on_random_graded_qrels(k: int) -> None:
    rnd = random.Random(17 + k)
    corpus = [f"d{i}" for i in range(40)]
    qrels, run, ranked, rels = {}, {}, [], []
    for q in range(60):
        rel = {d: rnd.choice([0, 1, 1, 2, 3]) for d in rnd.sample(corpus, rnd.randint(1, 6))}
        if not any(rel.values()):
            rel[rnd.choice(list(rel))] = 1
        scores = {d: rnd.random() for d in rnd.sample(corpus, 15)}
        docs = sorted(scores, key=scores.__getitem__, reverse=True)[:k]
        qrels[f"q{q}"], rels = rel, rels + [rel]
        run[f"q{q}"] = {d: scores[d] for d in docs}  # BEIR: the top-k results with their scores
        ranked.append(docs)
    ours = retrieval_metrics(ranked, rels, k)
    # BEIR's EvaluateRetrieval.evaluate: one evaluator over ndcg_cut, map_cut, recall, P at k
    cut = str(k)
    ev = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{cut}", f"map_cut.{cut}", f"recall.{cut}",
                                                f"P.{cut}", "recip_rank"})
    scores = ev.evaluate(run)
    for ours_name, theirs in ((f"ndcg@{k}", f"ndcg_cut_{k}"), (f"map@{k}", f"map_cut_{k}"),
                              (f"recall@{k}", f"recall_{k}"), (f"p@{k}", f"P_{k}"), (f"mrr@{k}", "recip_rank")):
        mean = sum(s[theirs] for s in scores.values()) / len(scores)
        assert ours[ours_name] == pytest.approx(mean, abs=1e-4), ours_name
        by_hand = sum(by_definition(d, r, k)[ours_name] for d, r in zip(ranked, rels, strict=True)) / len(rels)
        assert ours[ours_name] == pytest.approx(by_hand, abs=1e-4), ours_name
    assert len(scores) == 60
