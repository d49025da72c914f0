"""Weighted score fusion (dense + BM25, normalised) beside RRF, the rag eval weight sweep, the
best-mode line and latency, the passage-level BEIR set, and the pointwise rerank."""

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


def _facts_eval_files(tmp_path: Path) -> tuple[str, str]:
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"_id": "q1", "text": "highest mountain in the world"}, {"_id": "q3", "text": "who created Python"},
        {"_id": "q4", "text": "which organ makes the hormone that lowers blood sugar"}]))
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\teverest\t1\nq3\tpython\t1\nq4\tinsulin\t1\n")
    return str(queries), str(qrels)


def test_weighted_mode_in_search_and_eval(tmp_path: Path, workspace) -> None:
    rag.build("facts", {"facts": FACTS}, progress=False)
    hits = rag.search("facts", "Guido van Rossum language", k=2, mode="weighted")
    assert hits[0].doc_id == "python" and hits.mode == "weighted"
    m = rag.evaluate("facts", *_facts_eval_files(tmp_path), k=5, weight=0.4)
    assert m["weighted/ndcg@10"] == 1.0 and m["weighted/weight"] == 0.4
    assert m["fusion/best_weight"] in fusion.SWEEP and list(m.sweep) == list(fusion.SWEEP)
    assert all(m[f"{mode}/p50_ms"] > 0 for mode in ("dense", "bm25", "hybrid", "weighted"))
    mode, flag, ndcg = m.best
    assert ndcg == max(m[f"{x}/ndcg@10"] for x in m.modes()) == 1.0
    assert mode in m.modes() and flag.startswith(("--", "(the default)"))
    text = m._repr_mimebundle_()["text/plain"]
    assert f"best: {mode} (nDCG@10 1.0000, +" in text and "p50_ms" in text and "sweep" in text


def test_an_ask_ranks_as_the_deeper_search_eval_scores(workspace) -> None:
    """min-max fusion normalises over the pool: an ask (k=4) and %rag eval (k x 3 = 30 passages)
    must fuse the same pool, so that the ask's hits are the first of eval's ranking."""
    from cellops.kernels_lib.rag.retrieve import search_many
    from cellops.kernels_lib.rag.store import open_index

    animals = ["otter", "heron", "badger", "salmon", "falcon", "lynx", "newt", "bison", "crane", "viper"]
    places = ["river", "marsh", "forest", "glacier", "desert", "harbour", "meadow", "canyon", "reef"]
    acts = ["hunts", "nests", "sleeps", "swims", "migrates", "feeds"]
    combos = [(a, p, acts[(j + k) % 6], t) for j, a in enumerate(animals) for k, p in enumerate(places)
              for t in ("dawn", "noon", "dusk")]
    docs = [{"id": f"d{i}", "text": f"The {a} {v} near the {p} at {t}; {animals[(i * 7) % 10]}s avoid it."}
            for i, (a, p, v, t) in enumerate(combos)]
    assert len(docs) > 4 * 30  # deeper than any pool, so the pool decides the normalisation
    rag.build("wild", {"wild": docs}, progress=False)
    index = open_index("wild", workspace)
    queries = [f"where does the {a} {v}" for a, v in zip(animals, acts * 2, strict=False)]
    ask = search_many(index, queries, 4, "weighted")
    deep = search_many(index, queries, 30, "weighted")
    assert [[h.chunk.id for h in hs] for hs in ask] == [[h.chunk.id for h in hs[:4]] for hs in deep]
    assert [[h.score for h in hs] for hs in ask] == [[h.score for h in hs[:4]] for hs in deep]


def test_best_mode_prefers_higher_ndcg_then_speed() -> None:
    from cellops.kernels_lib.rag.evaluation import EvalResult

    base = {"dense/ndcg@10": 0.60, "dense/p50_ms": 5.0, "bm25/ndcg@10": 0.55, "bm25/p50_ms": 2.0,
            "weighted/ndcg@10": 0.62, "weighted/p50_ms": 9.0, "weighted/weight": 0.7,
            "fusion/best_weight": 0.5, "fusion/best_ndcg@10": 0.66}
    assert EvalResult(base, "x@1", 10, 10).best == ("weighted 0.5", "--weighted 0.5", 0.66)
    rr = base | {"dense+rerank/ndcg@10": 0.70, "dense+rerank/p50_ms": 900.0}
    assert EvalResult(rr, "x@1", 10, 10, rerank="qwen-0.5b").best == ("dense+rerank", "--rerank qwen-0.5b", 0.70)
    tie = {"dense/ndcg@10": 0.6, "dense/p50_ms": 5.0, "hybrid/ndcg@10": 0.6, "hybrid/p50_ms": 7.0}
    assert EvalResult(tie, "x@1", 10, 10).best == ("dense", "(the default)", 0.6)


def test_eval_table_columns_keep_one_type() -> None:
    """A W&B table types a column by its values: a metric only one mode has stays None elsewhere."""
    from cellops.kernels_lib.rag.evaluation import EvalResult

    r = EvalResult({"dense/ndcg@10": 0.6, "weighted/ndcg@10": 0.62, "weighted/weight": 0.6}, "x@1", 10, 10)
    cols, rows = r.table()
    weight = [row[cols.index("weight")] for row in rows]
    assert cols[0] == "mode" and weight == [None, 0.6]
    assert "weight" in r._repr_mimebundle_()["text/plain"] and "None" not in r._repr_mimebundle_()["text/plain"]


def test_qa_to_beir_passages_and_conclusion_queries(tmp_path: Path) -> None:
    from cellops.kernels_lib.rag.evaluation import load_qrels, load_queries, qa_to_beir

    src = tmp_path / "qa.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"id": "7", "question": "Does A help?", "contexts": ["Aim of A.", "", "A helped 9 of 10."],
         "long_answer": "A helps.", "decision": "yes"},
        {"id": "8", "question": "Is B safe?", "contexts": ["B was tried."], "long_answer": "B is safe."}]))
    files = qa_to_beir(src, tmp_path / "p", passages=True)
    corpus = [json.loads(x) for x in files["corpus"].read_text().splitlines()]
    assert [c["_id"] for c in corpus] == ["7-0", "7-2", "8-0"]  # an empty section is no passage
    qs = load_queries(str(files["queries"]))
    assert load_qrels(str(files["qrels"]), qs) == {"7": {"7-0": 1, "7-2": 1}, "8": {"8-0": 1}}
    assert qs[0]["text"] == "Does A help?" and qs[0]["answers"] == ["A helps."]
    concl = load_queries(str(qa_to_beir(src, tmp_path / "c", passages=True, query_field="long_answer")["queries"]))
    assert [q["text"] for q in concl] == ["A helps.", "B is safe."] and concl[0]["answers"] == []
    whole = [json.loads(x) for x in qa_to_beir(src, tmp_path / "w")["corpus"].read_text().splitlines()]
    assert [c["_id"] for c in whole] == ["7", "8"] and whole[0]["text"] == "Aim of A.\n\nA helped 9 of 10."


def test_rerank_rescores_the_top_passages_by_p_yes(tmp_path: Path, workspace) -> None:
    from cellops.kernels_lib.models import get_llm
    from cellops.kernels_lib.rag import rerank as rr

    llm = get_llm("default")
    msgs = [{"role": "user", "content": "Is water wet? Answer yes or no."}]
    p = llm.choice_probabilities(msgs, ("yes", "no"))
    assert p == llm.choice_probabilities(msgs, ("yes", "no")) and sum(p) == pytest.approx(1.0)
    long = " ".join(["insulin"] * 400)
    assert llm.count_tokens(llm.clip_tokens(long, 50)) <= 50 < llm.count_tokens(long)
    assert llm.clip_tokens("short text", 50) == "short text"
    # a candidate scored after another (the shared question prefix reused from the KV cache)
    # scores exactly as from scratch: the chunk grid depends on the prompt alone
    q = "Which organ produces insulin?"
    a, b = FACTS[4]["text"], FACTS[1]["text"]
    rr.p_yes(llm, "Where is the Nile?", a)  # nothing of the next prompt's question is cached
    fresh = rr.p_yes(llm, q, b)
    rr.p_yes(llm, q, a)
    assert rr.p_yes(llm, q, b) == fresh
    rag.build("facts", {"facts": FACTS}, progress=False)
    hits = rag.search("facts", q, k=3, rerank="default")
    assert hits.mode == "dense+rerank" and [h.rank for h in hits] == [1, 2, 3]
    assert all(0.0 <= h.score <= 1.0 for h in hits) and hits[0].score >= hits[-1].score
    m = rag.evaluate("facts", *_facts_eval_files(tmp_path), k=5, modes=("dense",), rerank="default", rerank_depth=4)
    assert 0.0 < m["dense+rerank/ndcg@10"] <= 1.0 and m["dense+rerank/ms_per_candidate"] > 0
    assert m["dense+rerank/p50_ms"] > m["dense+rerank/ms_per_candidate"]
    assert "dense+rerank" in m._repr_mimebundle_()["text/plain"]


def test_bm25_stems_and_an_old_index_keeps_its_tokenizer(tmp_path: Path, workspace) -> None:
    from cellops.kernels_lib.rag import lexical

    texts = ["Two studies of insulin", "A kilobyte of memory"]
    lexical.build(texts, tmp_path / "old", lexical.PLAIN)
    (tmp_path / "old" / lexical.TOKENIZER_FILE).unlink()  # as every build before the record wrote
    old = lexical.BM25Index(tmp_path / "old", 2)
    assert old.tokenizer == lexical.PLAIN and old.search(["kilobytes"], 2)[0].tolist() == [[-1, -1]]
    lexical.build(texts, tmp_path / "new")
    new = lexical.BM25Index(tmp_path / "new", 2)
    assert new.tokenizer == lexical.DEFAULT and new.search(["kilobytes", "study"], 1)[0].tolist() == [[1], [0]]

    v1 = rag.build("facts", {"facts": FACTS}, progress=False, stem=False)  # a version built without stemming
    assert lexical.stored_tokenizer(workspace.artifact_dir("index", "facts", v1.version.version) / "bm25") == lexical.PLAIN
    v2 = rag.build("facts", {"facts": FACTS}, progress=False)  # same corpus, new tokenizer: rebuilt
    assert v2.created and v2.embedded == 0 and v2.content["bm25_tokenizer"] == lexical.DEFAULT.to_dict()
    assert v1.content["bm25_tokenizer"]["stemmer"] is None and v2.version.version == v1.version.version + 1
    assert not rag.search(f"facts@{v1.version.version}", "kilobytes", mode="bm25")  # searched unstemmed
    assert rag.search("facts", "kilobytes", mode="bm25")[0].doc_id == "zx81"
    assert not rag.build("facts", {"facts": FACTS}, progress=False).created
    v3 = rag.build("facts", {"facts": FACTS}, progress=False, stem=False)  # back to unstemmed: no embedding
    assert v3.embedded == 0 and v3.content["bm25_tokenizer"] == lexical.PLAIN.to_dict()
    assert not rag.search(v3.ref, "kilobytes", mode="bm25")
    # tokenizer.json is workspace data: an unknown stemmer or stopword list is a clear error
    for bad in ({"stopwords": "en", "stemmer": "klingon"}, {"stopwords": ["a"], "stemmer": None}):
        (tmp_path / "new" / lexical.TOKENIZER_FILE).write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="tokenizer.json names"):
            lexical.BM25Index(tmp_path / "new", 2)
