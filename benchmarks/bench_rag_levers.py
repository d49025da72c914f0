"""Generic retrieval levers beside dense and weighted fusion: dense pseudo-relevance feedback
(Rocchio on embeddings), BM25 + RM3 query expansion, both under weighted fusion, contextual chunk
text, and HyDE; each chosen on the tune half and reported on the report half, for both query
types, with a paired 95% interval against dense.

    .venv/bin/python benchmarks/bench_rag_levers.py [--hyde qwen-0.5b] [--hyde-queries 150]

Two corpora over the same 300 PubMedQA dev rows and the same query files (bench_rag_modes.py):
- ``passages``: every section of an abstract its own passage, every passage of the question's
  abstract relevant (bench_rag_modes' set), scored at passage level and at doc level (the
  abstract, ranked by its best passage);
- ``results``: each abstract is ONE passage, its last section (``results_set``): exactly one
  relevant document per query and no sibling passages, the SciFact-like, doc-level check. A
  lever whose passage-set gain comes from ranking more sections of an abstract it already found
  (which those qrels reward) shows no gain here.
Settings are chosen on the tune half (rows 0-149) by the smallest gain over dense across the four
tune cells (2 corpora x 2 query types), so a setting must help everywhere; the report half (rows
150-299) is scored once with them. Latency: p50 of 20 report queries searched one at a time
(embedding included), with the machine's load printed (``LoadWatch``).

Contextual chunk text is index-time: a third index whose passages after an abstract's first
each carry that first section as a header (the record's ``title``, which the JSONL loader puts
before the text). HyDE (``--hyde MODEL``) generates a short hypothetical passage per question
(greedy, 80 tokens) and searches with the normalised sum of its embedding and the question's;
its generations are cached beside the bench's index (``hyde-MODEL.jsonl``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _feedback import Feedback, rm3_terms, rocchio, weighted_bm25
from _load import LoadWatch, load_average
from bench_rag_modes import (
    INDEX,
    RESULTS_INDEX,
    SHARED,
    TUNE_ROWS,
    WORK,
    ndcg_both,
    paired_ci,
    passage_set,
    results_set,
)

from cellops.kernels_lib.rag import fusion

DEPTH = 30  # ranked passages scored (nDCG@10 needs 10 documents after dedup), as %rag eval's k * 3
POOL = fusion.pool(DEPTH)  # candidates per retriever: what retrieve.search_many takes for DEPTH
CTX_INDEX = "pubmedqa-passages-ctx"
PRF_GRID = [Feedback(docs=k, beta=b) for k, b in itertools.product((1, 2, 3, 5), (0.5, 1.0, 2.0))]
RM3_GRID = [Feedback(docs=k, terms=t, lam=lam) for k, t, lam in
            ((3, 10, 0.5), (3, 20, 0.3), (5, 10, 0.5), (5, 20, 0.5), (10, 20, 0.5))]
WEIGHTS = (0.5, 0.6, 0.7)
HYDE_SYSTEM = "You write short passages from biomedical research abstracts."
HYDE_PROMPT = "Write a passage of a research abstract (2-3 sentences) that answers this question.\nQuestion: {q}\nPassage:"

Run = list[list[tuple[int, float]]]  # per query: ranked (chunk row, score)


class Corpus:
    """One index with the first round of every query set cached: query vectors, dense and BM25
    candidates, query tokens."""

    def __init__(self, name: str, index: str, qrels: Path, sets: dict[str, Any]) -> None:
        from cellops.kernels_lib.models import get_embedder
        from cellops.kernels_lib.rag.evaluation import load_qrels, load_queries
        from cellops.kernels_lib.rag.store import open_index
        from cellops.kernels_lib.workspace import get_workspace

        self.name, self.idx = name, open_index(index, get_workspace())
        self.emb = get_embedder(self.idx.embedder_uri)
        self.first: dict[tuple[str, str], dict[str, Any]] = {}
        self._tokens: dict[int, list[str]] = {}
        self.expanded: dict[tuple[int, Feedback, float], list[tuple[np.ndarray, np.ndarray]]] = {}
        for key in (("question", "tune"), ("question", "report"), ("conclusion", "tune"), ("conclusion", "report")):
            qs = load_queries(str(sets[key]))
            texts = [q["text"] for q in qs]
            vec = self.emb.encode(texts)
            di, ds = self.idx.dense.search(vec, POOL)
            bi, bs = self.idx.bm25.search(texts, POOL)
            self.first[key] = {"qs": qs, "rel": load_qrels(str(qrels), qs), "vec": vec, "dense": (di, ds),
                               "bm25": (bi, bs), "tokens": self.idx.bm25.tokenizer(texts)}

    def tokens(self, row: int) -> list[str]:
        if row not in self._tokens:
            self._tokens[row] = self.idx.bm25.tokenizer([self.idx.chunks[row].embed_text])[0]
        return self._tokens[row]

    def ndcg(self, f: dict[str, Any], run: Run) -> tuple[list[float], list[float]]:
        from cellops.kernels_lib.rag.retrieve import Hit

        hits = [[Hit(r + 1, float(s), self.idx.chunks[int(i)]) for r, (i, s) in enumerate(q) if int(i) >= 0]
                for q in run]
        return ndcg_both(hits, f["qs"], f["rel"])

    def rm3(self, tokens: list[str], first: tuple[np.ndarray, np.ndarray], fb: Feedback) -> tuple[np.ndarray, np.ndarray]:
        """One query's BM25 + RM3 candidates (feedback: ``first``'s top ``fb.docs`` rows)."""
        n = len(self.idx.chunks)
        top = [int(j) for j in first[0][:fb.docs] if int(j) >= 0]
        base = weighted_bm25(self.idx.bm25.retriever, {t: 1.0 for t in tokens}, n)  # each one's own BM25 score
        terms = rm3_terms(tokens, [self.tokens(j) for j in top], [float(base[j]) for j in top], fb)
        scores = weighted_bm25(self.idx.bm25.retriever, terms, n)
        order = np.argsort(-scores, kind="stable")[:POOL]
        order = order[scores[order] > 0]
        return order, scores[order]


def ranked(ids: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if int(i) >= 0][:DEPTH]


def arm(c: Corpus, f: dict[str, Any], prf: Feedback | None, rm3: Feedback | None, weight: float | None,
        vec: np.ndarray | None = None) -> Run:
    """The run of one configuration over first round ``f``. ``weight`` None: a single retriever
    (dense, with ``prf``, or BM25, with ``rm3``; ``docs=0``: plain BM25); else weighted fusion of
    both, the feedback taken from the fused first round. ``vec``: query vectors to search with
    instead of the questions' (HyDE)."""
    q = f["vec"] if vec is None else vec
    dense = f["dense"] if vec is None else c.idx.dense.search(q, POOL)
    n = len(f["qs"])
    if weight is None and rm3 is None:  # dense, maybe with feedback
        if prf is not None:
            dense = c.idx.dense.search(rocchio(q, dense[0], c.idx.dense.vectors, prf), POOL)
        return [ranked(dense[0][i], dense[1][i]) for i in range(n)]
    if weight is None:  # BM25 + RM3
        return [ranked(*c.rm3(f["tokens"][i], (f["bm25"][0][i], f["bm25"][1][i]), rm3)) for i in range(n)]
    fused = [fusion.weighted((dense[0][i], dense[1][i]), (f["bm25"][0][i], f["bm25"][1][i]), POOL, weight) for i in range(n)]
    first = np.array([[i for i, _ in r] + [-1] * (POOL - len(r)) for r in fused])
    if prf is not None:
        dense = c.idx.dense.search(rocchio(q, first, c.idx.dense.vectors, prf), POOL)
    if rm3 is None:
        bm = [(f["bm25"][0][i], f["bm25"][1][i]) for i in range(n)]
    else:  # the same for every prf setting: computed once per (first round, rm3, weight)
        memo = (id(f), rm3, weight)
        if memo not in c.expanded:
            c.expanded[memo] = [c.rm3(f["tokens"][i], (first[i], None), rm3) for i in range(n)]
        bm = c.expanded[memo]
    return [fusion.weighted((dense[0][i], dense[1][i]), bm[i], DEPTH, weight) for i in range(n)]


Config = tuple[Feedback | None, Feedback | None, float | None]  # (prf, rm3, fusion weight)
PLAIN_BM25 = Feedback(docs=0, lam=1.0)  # RM3 with no feedback passage: BM25 itself


def _prf(p: Feedback) -> str:
    return f"prf k{p.docs} b{p.beta}"


def _rm3(r: Feedback) -> str:
    return f"rm3 k{r.docs} t{r.terms} l{r.lam}"


def configs() -> dict[str, tuple[str, Config]]:
    """name -> (lever, configuration); one setting per lever is chosen on the tune half."""
    out: dict[str, tuple[str, Config]] = {"dense": ("dense", (None, None, None)),
                                          "bm25": ("bm25", (None, PLAIN_BM25, None)),
                                          "weighted 0.6 (default)": ("weighted (default)", (None, None, 0.6))}
    out |= {f"dense+{_prf(p)}": ("dense+prf", (p, None, None)) for p in PRF_GRID}
    out |= {f"bm25+{_rm3(r)}": ("bm25+rm3", (None, r, None)) for r in RM3_GRID}
    for p, r, w in itertools.product([None, *PRF_GRID], [None, *RM3_GRID], WEIGHTS):
        lever = "weighted" + ("+prf" if p else "") + ("+rm3" if r else "")
        name = " ".join([f"weighted {w}", *([_prf(p)] if p else []), *([_rm3(r)] if r else [])])
        out[name] = (lever, (p, r, w))
    return out


def choose(corpora: list[Corpus]) -> dict[str, str]:
    """Per family, the setting whose smallest tune gain over dense (4 cells) is largest."""
    cells = [(c, c.first[qset, "tune"]) for c in corpora for qset in ("question", "conclusion")]
    base = [statistics.fmean(c.ndcg(f, arm(c, f, None, None, None))[0]) for c, f in cells]
    gains: dict[str, float] = {}
    best: dict[str, str] = {}
    for name, (lever, cfg) in configs().items():
        gains[name] = min(statistics.fmean(c.ndcg(f, arm(c, f, *cfg))[0]) - b for (c, f), b in zip(cells, base, strict=True))
        if lever not in best or gains[name] > gains[best[lever]]:
            best[lever] = name
    print("\n== tune half: the setting chosen per lever (smallest gain over dense across the 4 tune cells)")
    for fam, name in best.items():
        print(f"  {fam:40} -> {name:44} min gain {gains[name]:+.4f}")
    return best


def latency(c: Corpus, cfg: Config, n: int = 20) -> float:
    """p50 ms per query, one at a time, first round and embedding included (report questions)."""
    f = c.first["question", "report"]
    times = []
    for q in f["qs"][:n]:
        t0 = time.perf_counter()
        vec = c.emb.encode([q["text"]])
        one = {"qs": [q], "vec": vec, "dense": c.idx.dense.search(vec, POOL),
               "bm25": c.idx.bm25.search([q["text"]], POOL), "tokens": c.idx.bm25.tokenizer([q["text"]])}
        arm(c, one, *cfg)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def report(corpora: list[Corpus], chosen: dict[str, str]) -> None:
    cfgs = configs()
    print(f"\n== report half (rows {TUNE_ROWS}-299): nDCG@10, minus dense with a paired 95% CI; p50 ms "
          f"(load now {load_average():.2f})")
    for c in corpora:
        for qset in ("question", "conclusion"):
            f = c.first[qset, "report"]
            dense = c.ndcg(f, arm(c, f, None, None, None))
            print(f"\n-- {c.name}, {qset} queries ({len(f['qs'])})")
            for name in chosen.values():
                got = c.ndcg(f, arm(c, f, *cfgs[name][1]))
                cols = []
                for level, a, b in (("passage", dense[0], got[0]), ("doc", dense[1], got[1])):
                    if level == "doc" and c.name == "results":
                        continue  # one passage per document: the same figure
                    mean, lo, hi = paired_ci(a, b)
                    cols.append(f"{level} {statistics.fmean(b):.4f} ({mean:+.4f}, {lo:+.4f}..{hi:+.4f})")
                ms = f"{latency(c, cfgs[name][1]):6.1f} ms" if qset == "question" else ""
                print(f"   {name:48} " + "  ".join(cols) + f"  {ms}", flush=True)


def contextual(sets: dict[str, Any]) -> None:
    """Dense and weighted on the passage index whose later passages carry the abstract's first
    section as a header, beside the plain index: passage and doc level, tune and report."""
    from cellops.kernels_lib import rag

    rows = [json.loads(x) for x in (SHARED / "rag" / "pubmedqa_dev.jsonl").read_text().splitlines() if x.strip()]
    corpus = WORK / "ctx" / "corpus.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text("".join(json.dumps({"_id": f"{r['id']}-{j}", "text": t} | ({"title": r["contexts"][0]} if j else {})) + "\n"
                              for r in rows for j, t in enumerate(r["contexts"]) if t.strip()))
    print("\n" + rag.build(CTX_INDEX, {str(corpus): str(corpus)}, progress=False)._summary(), flush=True)
    plain, ctx = Corpus("passages", INDEX, sets["qrels"], sets), Corpus("passages+header", CTX_INDEX, sets["qrels"], sets)
    print("== contextual chunk text (passage set): nDCG@10 passage / doc level, minus the plain index")
    for key in itertools.product(("question", "conclusion"), ("tune", "report")):
        for name, w in (("dense", None), ("weighted 0.6", 0.6)):
            fa, fb = plain.first[key], ctx.first[key]
            a, b = plain.ndcg(fa, arm(plain, fa, None, None, w)), ctx.ndcg(fb, arm(ctx, fb, None, None, w))
            print(f"   {key[0]:10} {key[1]:6} {name:12} passage {statistics.fmean(a[0]):.4f} -> {statistics.fmean(b[0]):.4f}"
                  f"   doc {statistics.fmean(a[1]):.4f} -> {statistics.fmean(b[1]):.4f} ({paired_ci(a[1], b[1])[0]:+.4f})")


def hyde_texts(model: str, qs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Generated passages per query id, cached in WORK/hyde-MODEL.jsonl (generation is slow)."""
    from cellops.kernels_lib.models import get_llm
    from cellops.kernels_lib.models.base import GenParams

    cache = WORK / f"hyde-{model}.jsonl"
    got = {r["id"]: r for r in (json.loads(x) for x in cache.read_text().splitlines() if x.strip())} if cache.is_file() else {}
    llm = None
    for q in qs:
        if q["id"] in got:
            continue
        llm = llm or get_llm(model)
        msgs = [{"role": "system", "content": HYDE_SYSTEM}, {"role": "user", "content": HYDE_PROMPT.format(q=q["text"])}]
        t0 = time.perf_counter()
        g = llm.generate(msgs, GenParams(max_tokens=80))
        got[q["id"]] = {"id": q["id"], "text": g.text, "s": time.perf_counter() - t0, "load": load_average()}
        with open(cache, "a", encoding="utf-8") as f:
            f.write(json.dumps(got[q["id"]]) + "\n")
    return got


def hyde(corpora: list[Corpus], model: str, n: int, halves: tuple[str, ...]) -> None:
    """Question queries only (a conclusion is already a passage-like claim)."""
    print(f"\n== HyDE with {model}: question + hypothetical passage, first {n} question queries per half")
    for half in halves:
        key = ("question", half)
        qs = corpora[0].first[key]["qs"][:n]
        gen = hyde_texts(model, qs)
        secs = [gen[q["id"]]["s"] for q in qs]
        print(f"   {half}: generation p50 {statistics.median(secs):.1f} s per query "
              f"(load at generation {statistics.median(gen[q['id']].get('load', 0) for q in qs):.1f})")
        for c in corpora:
            sub = dict(c.first[key], qs=qs, rel=c.first[key]["rel"], vec=c.first[key]["vec"][:n],
                       dense=tuple(x[:n] for x in c.first[key]["dense"]), bm25=tuple(x[:n] for x in c.first[key]["bm25"]),
                       tokens=c.first[key]["tokens"][:n])
            vec = sub["vec"] + c.emb.encode([gen[q["id"]]["text"] for q in qs])
            vec = vec / np.linalg.norm(vec, axis=1, keepdims=True)
            for name, w in (("dense", None), ("weighted 0.6", 0.6)):
                a = c.ndcg(sub, arm(c, sub, None, None, w))
                b = c.ndcg(sub, arm(c, sub, None, None, w, vec=vec))
                mean, lo, hi = paired_ci(a[0], b[0])
                print(f"   {c.name:9} {name:12} {statistics.fmean(a[0]):.4f} -> +HyDE {statistics.fmean(b[0]):.4f} "
                      f"({mean:+.4f}, {lo:+.4f}..{hi:+.4f}); doc {statistics.fmean(a[1]):.4f} -> {statistics.fmean(b[1]):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hyde", default="", help="model URI for the HyDE arm (e.g. qwen-0.5b); off by default (slow)")
    ap.add_argument("--hyde-queries", type=int, default=150, help="question queries per half for HyDE")
    ap.add_argument("--hyde-halves", default="tune", help="halves HyDE runs on: tune | tune,report")
    ap.add_argument("--skip-contextual", action="store_true")
    ap.add_argument("--skip-levers", action="store_true", help="no PRF / RM3 choice and report (~10 min loaded)")
    args = ap.parse_args()
    sets = passage_set()
    corpora = [Corpus("passages", INDEX, sets["qrels"], sets), Corpus("results", RESULTS_INDEX, results_set(sets), sets)]
    if not args.skip_levers:
        report(corpora, choose(corpora))
    if not args.skip_contextual:
        contextual(sets)
    if args.hyde:
        hyde(corpora, args.hyde, args.hyde_queries, tuple(args.hyde_halves.split(",")))


if __name__ == "__main__":
    with LoadWatch():
        main()
