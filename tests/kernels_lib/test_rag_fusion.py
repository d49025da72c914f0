"""Weighted score fusion (dense + BM25, normalised) beside RRF, and the rag eval weight sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_rag_retrieval import FACTS  # the same small corpus

from cellops.kernels_lib import rag
from cellops.kernels_lib.rag import fusion


def test_weighted_fusion_keeps_score_margins() -> None:
    dense = ([7, 8, 9], [0.90, 0.89, 0.10])  # 7 and 8 almost tie in dense
    bm25 = ([8, 9, -1], [12.0, 1.0, 0.0])  # BM25 is sure about 8; 7 is not in its pool
    assert [i for i, _ in fusion.weighted(dense, bm25, 3, weight=1.0)] == [7, 8, 9]
    assert fusion.weighted(dense, bm25, 3, weight=0.0)[0][0] == 8
    fused = fusion.weighted(dense, bm25, 3, weight=0.7)
    assert fused[0][0] == 8 and fused[0][1] == pytest.approx(0.7 * (0.79 / 0.80) + 0.3)
    assert fusion.weighted(([], []), ([], []), 3) == []


def test_weighted_mode_in_search_and_eval(tmp_path: Path, workspace) -> None:
    rag.build("facts", {"facts": FACTS}, progress=False)
    hits = rag.search("facts", "Guido van Rossum language", k=2, mode="weighted")
    assert hits[0].doc_id == "python" and hits.mode == "weighted"
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"_id": "q1", "text": "highest mountain in the world"}, {"_id": "q3", "text": "who created Python"}]))
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\teverest\t1\nq3\tpython\t1\n")
    m = rag.evaluate("facts", str(queries), str(qrels), k=5)
    assert m["weighted/ndcg@10"] == 1.0 and m["fusion/best_weight"] in fusion.SWEEP
    assert "fusion/best_weight" in m._repr_mimebundle_()["text/plain"]


def test_rerank_rescores_the_top_passages_by_p_yes(workspace) -> None:
    from cellops.kernels_lib.models import get_llm

    llm = get_llm("default")
    msgs = [{"role": "user", "content": "Is water wet? Answer yes or no."}]
    p = llm.choice_probabilities(msgs, ("yes", "no"))
    assert p == llm.choice_probabilities(msgs, ("yes", "no")) and sum(p) == pytest.approx(1.0)
    rag.build("facts", {"facts": FACTS}, progress=False)
    hits = rag.search("facts", "Which organ produces insulin?", k=3, rerank="default")
    assert hits.mode == "dense+rerank" and [h.rank for h in hits] == [1, 2, 3]
    assert all(0.0 <= h.score <= 1.0 for h in hits) and hits[0].score >= hits[-1].score
