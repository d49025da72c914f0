"""Dense (exact and ScaNN), BM25 and hybrid retrieval; retrieval and answer metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cellops.kernels_lib import rag
from cellops.kernels_lib.errors import InvalidInputError, WorkspaceError
from cellops.kernels_lib.rag import ann, evaluation, lexical
from cellops.kernels_lib.tracking import traces

FACTS = [
    {"id": "paris", "text": "The Eiffel Tower stands in Paris and was finished in 1889."},
    {"id": "everest", "text": "Mount Everest is the highest mountain on Earth at 8,849 metres."},
    {"id": "nile", "text": "The Nile flows north through Egypt into the Mediterranean Sea."},
    {"id": "python", "text": "Python is a programming language created by Guido van Rossum."},
    {"id": "insulin", "text": "Insulin is a hormone made by the pancreas that lowers blood sugar."},
    {"id": "zx81", "text": "The ZX81 home computer shipped with one kilobyte of memory."},
]


def test_choose_scales_with_corpus_size() -> None:
    assert ann.choose(5_000, 384).kind == "brute"
    small, big = ann.choose(30_000, 384), ann.choose(600_000, 384)
    assert small.kind == big.kind == "scann"
    assert small.num_leaves < big.num_leaves and 0 < small.leaves_to_search < small.num_leaves
    assert small.reorder >= 10


def test_scann_round_trip_matches_exact(tmp_path: Path) -> None:
    """A real ScaNN index above the brute-force threshold: serialized without pickle, reloaded
    from another folder, and close to exact search."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(300, 48))
    x = centers[rng.integers(0, 300, ann.BRUTE_MAX + 2_000)] + 0.35 * rng.normal(size=(ann.BRUTE_MAX + 2_000, 48))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    q = x[:200] + 0.05 * rng.normal(size=(200, 48)).astype(np.float32)
    cfg = ann.choose(len(x), 48)
    ann.build(x, cfg, tmp_path / "a" / "scann")
    assert not list((tmp_path / "a" / "scann").glob("*.pkl"))
    (tmp_path / "a").rename(tmp_path / "b")  # relative asset paths: the folder can move
    idx = ann.DenseIndex.load(x, cfg, tmp_path / "b" / "scann")
    exact_ids, _ = ann.exact_search(x, q, 10)
    ids, scores = idx.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids, strict=True)])
    assert recall >= 0.9 and np.all(np.diff(scores, axis=1) <= 1e-6)
    one_ids, _ = idx.search(q[:1], 10)  # the single-query path agrees with the batched one
    assert list(one_ids[0]) == list(ids[0])
    (tmp_path / "b" / "scann" / "scann_docids.pkl").write_bytes(b"not loaded")
    with pytest.raises(WorkspaceError, match="pickle"):
        ann.DenseIndex.load(x, cfg, tmp_path / "b" / "scann")


def test_exact_search_orders_by_score() -> None:
    v = np.eye(4, dtype=np.float32)
    ids, sc = ann.exact_search(v, np.array([[0.1, 0.9, 0.3, 0.0]], np.float32), 3)
    assert ids.tolist() == [[1, 2, 0]] and sc[0, 0] == pytest.approx(0.9)


def test_rrf_fuses_ranks() -> None:
    fused = lexical.rrf([[3, 1, 2], [1, 3, -1]], 3)
    assert [i for i, _ in fused] == [1, 3, 2]  # 1 and 3 tie on sum; ties break by id
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_search_modes_and_hits(workspace) -> None:
    rag.build("facts", {"facts": FACTS}, progress=False)
    dense = rag.search("facts", "Which organ produces insulin?", k=3)
    assert dense[0].doc_id == "insulin" and dense[0].source == "facts[4]"
    assert dense[0].score > dense[1].score and dense.df.shape == (3, 7)
    t = traces.get(dense.trace_id)  # the Python API makes a trace like %%rag ask's retrieval
    assert [(s.name, s.kind) for s in t.spans] == [("rag search facts@1", "chain"), ("retrieve", "retriever"),
                                                    ("embed query", "embedding")]
    assert t.spans[1].events[0]["attributes"]["ids"] == [h.chunk.id for h in dense]
    bm = rag.search("facts", "kilobyte memory", k=3, mode="bm25")
    assert bm[0].doc_id == "zx81" and len(bm) == 1  # only one chunk shares a term
    hyb = rag.search("facts", "Guido van Rossum language", k=2, hybrid=True)
    assert hyb[0].doc_id == "python" and hyb.mode == "hybrid"
    assert "text/html" in hyb._repr_mimebundle_()
    with pytest.raises(InvalidInputError, match="empty"):
        rag.search("facts", "  ")
    with pytest.raises(InvalidInputError, match="-k must be at least 1"):
        rag.search("facts", "x", k=0)
    assert [x.status for x in traces.search(name="rag search*")][0] == "error"  # the failed one kept its trace


def test_retrieval_metrics_by_hand() -> None:
    ranked = [["a", "b", "c"], ["x", "y", "z"], ["q", "r", "s"]]
    rels = [{"b": 1}, {"x": 2, "z": 1}, {"nope": 1}]
    m = evaluation.retrieval_metrics(ranked, rels, 3)
    assert m["recall@1"] == pytest.approx((0 + 0.5 + 0) / 3, abs=1e-4)
    assert m["recall@3"] == pytest.approx((1 + 1 + 0) / 3, abs=1e-4)
    assert m["mrr@3"] == pytest.approx((0.5 + 1 + 0) / 3, abs=1e-4)
    ndcg_1 = 1 / np.log2(3)
    ndcg_2 = (2 + 1 / np.log2(4)) / (2 + 1 / np.log2(3))  # trec_eval: linear gains, as BEIR
    assert m["ndcg@10"] == pytest.approx((ndcg_1 + ndcg_2) / 3, abs=1e-4)


def test_answer_metrics() -> None:
    assert evaluation.token_f1("The Paris tower [1]", "paris tower") == pytest.approx(1.0)
    assert evaluation.token_f1("a cat", "the dog") == 0.0
    assert evaluation.groundedness("Paris has a tower.", ["Paris is in France; the tower is tall."]) == 1.0
    assert evaluation.groundedness("Berlin has walls.", ["Paris is in France."]) == 0.0


def test_evaluate_beir_files_all_modes(tmp_path: Path, workspace) -> None:
    rag.build("facts", {"facts": FACTS}, progress=False)
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"_id": "q1", "text": "highest mountain in the world"},
        {"_id": "q2", "text": "river that flows through Egypt"},
        {"_id": "q3", "text": "who created Python"}]))
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\teverest\t1\nq2\tnile\t1\nq3\tpython\t1\n")
    m = rag.evaluate("facts", str(queries), str(qrels), k=5)
    for mode in ("dense", "bm25", "hybrid"):
        assert {f"{mode}/recall@5", f"{mode}/mrr@5", f"{mode}/ndcg@10"} <= set(m)
    assert m["dense/recall@5"] == 1.0 and m["dense/mrr@5"] == 1.0
    run = workspace.list_runs("rag-eval")[0]
    assert run["record"]["metrics"] == dict(m) and run["record"]["n_queries"] == 3
    # the record names its inputs: what was given and the hash of what was read from it
    assert run["record"]["queries"]["from"] == str(queries) and run["record"]["qrels"]["from"] == str(qrels)
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\teverest\t1\nq2\tnile\t2\nq3\tpython\t1\n")
    rag.evaluate("facts", str(queries), str(qrels), k=5, modes=("dense",))
    again = workspace.list_runs("rag-eval")[0]["record"]
    assert again["qrels"]["hash"] != run["record"]["qrels"]["hash"]
    assert again["queries"]["hash"] == run["record"]["queries"]["hash"]
    assert "dense" in m._repr_mimebundle_()["text/plain"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("q9\tnile\t1\n")
    with pytest.raises(InvalidInputError, match="no query id appears in the qrels"):
        rag.evaluate("facts", str(queries), str(bad))
