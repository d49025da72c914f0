"""Retrieval benchmarks for %%rag (issue 8), each figure a ratio against a baseline run in the
same process:

  ingest   chunks/s of ``cellops.rag.build`` vs a raw sentence-transformers encode of the same
           chunks (target ratio >= 0.9)
  ann      recall@10 vs exact search and queries/s (batched and one at a time) for exact numpy,
           ScaNN at the settings cellops chooses, and FAISS HNSW (M=32, efSearch=64), on >= 50,000
           real text chunks: the docstrings of the installed packages
  latency  p50 of ``cellops.rag.search`` vs embedding + a raw ScaNN search (target overhead <= 10%)

    python benchmarks/bench_retrieval.py prepare   # embed the docstring corpus once (cached)
    python benchmarks/bench_retrieval.py [all|ingest|ann|latency]

MiniLM embeds ~40 chunks/s on 2 quiet CPU cores, so ``prepare`` embeds in resumable shards under
~/.cache/cellops-bench/ (outside the repo) and the ANN run reuses them. Until 51,000 are cached
the ANN and latency runs use 384-d LSA vectors (TF-IDF + SVD) of the same 61,000 chunks.
Throughput is reported per CPU-second (1 thread each, best of 3): wall-clock q/s on the shared
box swings 10x with the neighbours' load.

Measured 2026-11-25 on the 2 quiet cores (load ~1.6), MiniLM vectors of 50,000 db chunks + 1,000
held-out queries, 1 thread each:
  ANN       exact numpy 1,047 / 96 q/cpu-s (batched / single)
            ScaNN (cellops: 340 leaves, SOAR, 17 searched, AH 2-dim, reorder 80)
                        recall@10 0.975, 11,587 / 8,423 q/cpu-s
            FAISS HNSW M=32 efSearch=64: recall@10 0.990, 2,295 / 2,239 q/cpu-s
            -> ScaNN/HNSW 5.05x batched, 3.76x single
  ingest    rag.build 19.4 chunks/s vs raw encode 16.3 chunks/s (160 chunks): ratio 1.19
  latency   rag.search p50 25.6 ms vs embed + raw ScaNN 24.4 ms: overhead +5.1%
            (a sentence-transformers encode + raw ScaNN: 39.2 ms)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch

CACHE = Path(os.environ.get("CELLOPS_BENCH_CACHE", Path.home() / ".cache" / "cellops-bench"))
N_DB, N_QUERIES, SHARD = 60_000, 1_000, 2_000
MIN_DB = 50_000
WORDS_PER_CHUNK, MIN_WORDS = 96, 8


# -- the docstring corpus --------------------------------------------------------------------
def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                out.append(doc)
    return out


def docstring_chunks(limit: int) -> list[str]:
    """Unique ~96-word windows of every docstring in site-packages, shuffled with a fixed seed."""
    site = Path(sysconfig.get_paths()["purelib"])
    seen: set[str] = set()
    chunks: list[str] = []
    for path in sorted(site.rglob("*.py")):
        for doc in _docstrings(path):
            words = doc.split()
            for i in range(0, len(words), WORDS_PER_CHUNK):
                piece = words[i:i + WORDS_PER_CHUNK]
                if len(piece) < MIN_WORDS:
                    continue
                text = " ".join(piece)
                h = hashlib.sha1(text.encode()).hexdigest()
                if h not in seen:
                    seen.add(h)
                    chunks.append(text)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(chunks))
    return [chunks[i] for i in order[:limit]]


def prepare() -> None:
    """Embed the first >= MIN_DB + N_QUERIES docstring chunks into resumable shards."""
    CACHE.mkdir(parents=True, exist_ok=True)
    texts_path = CACHE / "docstrings.jsonl"
    if not texts_path.exists():
        texts = docstring_chunks(N_DB + N_QUERIES)
        tmp = texts_path.with_suffix(".tmp")
        tmp.write_text("\n".join(json.dumps(t) for t in texts) + "\n")
        tmp.replace(texts_path)
        print(f"corpus: {len(texts)} unique docstring chunks", flush=True)
    texts = [json.loads(x) for x in texts_path.read_text().splitlines()]
    from cellops.kernels_lib.models import get_embedder

    emb = get_embedder("default")
    t0 = time.perf_counter()
    done = 0
    for s in range(0, MIN_DB + N_QUERIES, SHARD):  # enough for the ANN run; more only costs time
        shard = CACHE / f"vectors_{s // SHARD:03d}.npy"
        if shard.exists():
            continue
        v = emb.encode(texts[s:s + SHARD], batch_size=16)  # less padding: ~20% faster than 64 here
        np.save(shard.with_suffix(".tmp.npy"), v)
        shard.with_suffix(".tmp.npy").replace(shard)
        done += len(v)
        rate = done / (time.perf_counter() - t0)
        print(f"shard {s // SHARD}: {s + len(v)}/{len(texts)} embedded ({rate:.1f} chunks/s)", flush=True)


def load_corpus() -> tuple[list[str], np.ndarray]:
    """(texts, vectors) of the embedded prefix; the first N_QUERIES rows are the queries."""
    texts = [json.loads(x) for x in (CACHE / "docstrings.jsonl").read_text().splitlines()]
    shards = []
    for s in range(0, len(texts), SHARD):
        shard = CACHE / f"vectors_{s // SHARD:03d}.npy"
        if not shard.exists():
            break
        shards.append(np.load(shard, allow_pickle=False))
    vecs = np.concatenate(shards) if shards else np.zeros((0, 384), np.float32)
    return texts[: len(vecs)], vecs


def lsa_vectors(texts: list[str], dim: int = 384) -> np.ndarray:
    """TF-IDF + truncated SVD (LSA) text vectors, L2-normalised: real vectors of the real chunks
    when the MiniLM cache is not complete (see ``corpus_vectors``)."""
    path = CACHE / f"lsa{dim}_{len(texts)}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=200_000).fit_transform(texts)
    v = TruncatedSVD(dim, algorithm="randomized", n_iter=5, random_state=0).fit_transform(x)
    v = (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    np.save(path, v)
    return v


def corpus_vectors() -> tuple[str, list[str], np.ndarray]:
    """MiniLM vectors when >= 50,000 db chunks are cached, else LSA vectors of the same chunks."""
    texts, vecs = load_corpus()
    if len(vecs) >= MIN_DB + N_QUERIES:
        return "MiniLM (cached)", texts, vecs
    texts = [json.loads(x) for x in (CACHE / "docstrings.jsonl").read_text().splitlines()]
    print(f"note: only {len(vecs)} MiniLM vectors cached (run `prepare`); using 384-d LSA vectors "
          "of the same chunks", flush=True)
    return "LSA-384 (TF-IDF + SVD)", texts, lsa_vectors(texts)


def _best_cpu(f, repeat: int = 3) -> float:
    """Best-of CPU seconds: wall time on a shared 2-core box swings 10x with the neighbours' load."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        f()
        best = min(best, time.process_time() - t)
    return best


def _rate(f, n: int) -> tuple[float, float]:
    """(queries per CPU-second, queries per wall-second) of ``f`` answering n queries."""
    f()  # warm
    w = time.perf_counter()
    cpu = _best_cpu(f)
    wall = (time.perf_counter() - w) / 3
    return n / cpu, n / wall


def bench_ann() -> dict[str, float]:
    import faiss

    from cellops.kernels_lib.rag import ann

    kind, _, vecs = corpus_vectors()
    q, db = vecs[:N_QUERIES], np.ascontiguousarray(vecs[N_QUERIES:])
    n1 = 300  # single-query loops
    print(f"ANN on {len(db)} docstring chunks ({kind}), {len(q)} held-out queries, 1 thread each", flush=True)
    faiss.omp_set_num_threads(1)
    gt, _ = ann.exact_search(db, q, 10)

    def recall(ids: np.ndarray) -> float:
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, gt, strict=True)]))

    rows = {}
    rows["exact numpy"] = (1.0, *_rate(lambda: ann.exact_search(db, q, 10), len(q)),
                           *_rate(lambda: [ann.exact_search(db, q[i:i + 1], 10) for i in range(n1)], n1))
    cfg = ann.choose(len(db), db.shape[1])
    t = time.perf_counter()
    tmp = tempfile.TemporaryDirectory()
    ann.build(db, cfg, Path(tmp.name) / "scann")
    idx = ann.DenseIndex.load(db, cfg, Path(tmp.name) / "scann")
    scann_build = time.perf_counter() - t
    rows["ScaNN (cellops)"] = (recall(idx.search(q, 10)[0]), *_rate(lambda: idx.search(q, 10), len(q)),
                               *_rate(lambda: [idx.search(q[i:i + 1], 10) for i in range(n1)], n1))
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(db.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(db)
    hnsw.hnsw.efSearch = 64
    hnsw_build = time.perf_counter() - t
    rows["FAISS HNSW M=32 ef=64"] = (recall(hnsw.search(q, 10)[1]), *_rate(lambda: hnsw.search(q, 10), len(q)),
                                     *_rate(lambda: [hnsw.search(q[i:i + 1], 10) for i in range(n1)], n1))
    print(f"ScaNN settings: {cfg.to_dict()} (build {scann_build:.0f}s; HNSW build {hnsw_build:.0f}s)")
    print(f"{'':24}{'recall@10':>10}{'batched q/cpu-s':>17}{'(wall)':>9}{'single q/cpu-s':>16}{'(wall)':>9}")
    for name, (r, b_cpu, b_wall, s_cpu, s_wall) in rows.items():
        print(f"{name:24}{r:>10.3f}{b_cpu:>17.0f}{b_wall:>9.0f}{s_cpu:>16.0f}{s_wall:>9.0f}")
    s, h = rows["ScaNN (cellops)"], rows["FAISS HNSW M=32 ef=64"]
    out = {"scann_recall": s[0], "hnsw_recall": h[0], "batched_ratio": s[1] / h[1], "single_ratio": s[3] / h[3]}
    print(f"ScaNN / HNSW queries per CPU-second: batched {out['batched_ratio']:.2f}x, single "
          f"{out['single_ratio']:.2f}x; target: recall >= 0.95 and both ratios >= 1", flush=True)
    return out


def bench_ingest(n: int = 160) -> float:
    """chunks/s of cellops.rag.build vs a raw sentence-transformers encode of the same chunks."""
    from cellops.kernels_lib import rag
    from cellops.kernels_lib.models import get_embedder
    from cellops.kernels_lib.rag.store import open_index

    texts = [json.loads(x) for x in (CACHE / "docstrings.jsonl").read_text().splitlines()[N_QUERIES:N_QUERIES + n]]
    model = get_embedder("default").model
    with tempfile.TemporaryDirectory() as d:
        os.environ["CELLOPS_HOME"] = str(Path(d) / ".cellops")
        os.environ["CELLOPS_WANDB"] = "off"
        src = Path(d) / "docs"
        src.mkdir()
        for i, t in enumerate(texts):  # one file per chunk: the build reads, hashes and chunks each
            (src / f"doc{i:04d}.txt").write_text(t)
        model.encode(texts[:16])  # warm
        raw, built = [], []
        for rep in range(2):  # alternate, keep the best of each: the neighbours' load drifts
            t = time.perf_counter()
            model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
            raw.append(n / (time.perf_counter() - t))
            t = time.perf_counter()
            v = rag.build(f"ingest{rep}", [str(src)], chunker="token", chunk_size=128, overlap=0, progress=False)
            built.append(v.counts["chunks"] / (time.perf_counter() - t))
        assert len(open_index(v.ref, __import__("cellops").get_workspace()).chunks) == n
    ratio = max(built) / max(raw)
    print(f"ingest: rag.build {max(built):.1f} chunks/s vs raw encode {max(raw):.1f} chunks/s "
          f"(n={n}): ratio {ratio:.2f} (target >= 0.9)", flush=True)
    return ratio


def bench_latency(queries: int = 100) -> float:
    """p50 of cellops.rag.search vs embedding + a raw ScaNN search, on a ScaNN-sized index
    written through the build path (its vectors from the cache, so nothing is re-embedded)."""
    from cellops.kernels_lib import rag
    from cellops.kernels_lib.models import get_embedder
    from cellops.kernels_lib.rag import ingest
    from cellops.kernels_lib.rag.store import open_index

    kind, texts, vecs = corpus_vectors()
    db_texts, db = texts[N_QUERIES:], vecs[N_QUERIES:]
    qs = texts[:queries]
    with tempfile.TemporaryDirectory() as d:
        os.environ["CELLOPS_HOME"] = str(Path(d) / ".cellops")
        os.environ["CELLOPS_WANDB"] = "off"
        ws = __import__("cellops").get_workspace()
        emb = get_embedder("default")
        chunks = [ingest.Chunk(-1, t, "docstrings.jsonl", str(i)) for i, t in enumerate(db_texts)]
        settings = ingest._settings(emb, "token", 96, 0)
        cfg = ingest.ann.choose(len(chunks), emb.dim)
        content = {**settings, "corpus_hash": "bench", "counts": {"chunks": len(chunks)}, "dim": emb.dim,
                   "sources": ["docstrings"], "files": {}, "skipped": [], "ann": cfg.to_dict()}
        ingest._write(ws, "bench", content, chunks, list(db), emb, "bench", cfg, [], False, time.perf_counter())
        index = open_index("bench", ws)
        rag.search("bench", qs[0], k=10)  # load + warm
        api, raw, raw_st = [], [], []

        def timed_api(q: str) -> None:
            t = time.perf_counter()
            rag.search("bench", q, k=10)
            api.append(time.perf_counter() - t)

        def timed_raw(q: str) -> None:
            t = time.perf_counter()  # the same embedder call rag.search makes (ONNX Runtime path)
            v = emb.encode([q])
            index.dense.searcher.search(v[0], 10)
            raw.append(time.perf_counter() - t)

        for i, q in enumerate(qs):  # interleaved, order alternating: both see the same load
            for f in ((timed_api, timed_raw) if i % 2 == 0 else (timed_raw, timed_api)):
                f(q)
        # Reference, in its own loop: torch's OpenMP threads keep spinning after an encode and
        # would slow whichever ONNX Runtime call came next if this were interleaved.
        for q in qs:
            t = time.perf_counter()
            v = emb.model.encode([q], convert_to_numpy=True, normalize_embeddings=True)
            index.dense.searcher.search(v[0].astype(np.float32), 10)
            raw_st.append(time.perf_counter() - t)
    p50_api, p50_raw, p50_st = (float(np.median(x)) for x in (api, raw, raw_st))
    overhead = p50_api / p50_raw - 1
    print(f"search latency p50 on {len(db)} chunks ({kind} index, ScaNN): rag.search {p50_api * 1e3:.1f} ms "
          f"vs embed + raw ScaNN {p50_raw * 1e3:.1f} ms: overhead {overhead * 100:+.1f}% (target <= 10%); "
          f"with a sentence-transformers encode instead: {p50_st * 1e3:.1f} ms", flush=True)
    return overhead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="?", default="all", choices=("all", "prepare", "ingest", "ann", "latency"))
    a = parser.parse_args()
    if a.what == "prepare":
        prepare()
        return
    if not (CACHE / "docstrings.jsonl").exists():
        texts = docstring_chunks(N_DB + N_QUERIES)
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "docstrings.jsonl").write_text("\n".join(json.dumps(t) for t in texts) + "\n")
    if a.what in ("all", "ingest"):
        bench_ingest()
    if a.what in ("all", "ann"):
        bench_ann()
    if a.what in ("all", "latency"):
        bench_latency()


if __name__ == "__main__":
    with LoadWatch():
        main()
