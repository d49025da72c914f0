"""Retrieval benchmarks for %%rag (issue 8), each figure a ratio against a baseline run in the
same process:

  ingest   chunks/s of ``cellops.rag.build`` vs a raw sentence-transformers encode of the same
           chunks (target ratio >= 0.9): ``--reps`` (default 5) runs of each, alternating order,
           medians of wall time and of CPU seconds (this process and its children, getrusage)
  ann      queries per CPU-second at equal recall: FAISS HNSW (M=32) over efSearch and ScaNN
           over leaves-searched x reorder, one thread each, recall@10 vs exact search on held-out
           queries; the fastest swept point reaching recall@10 0.95 and 0.98 for each, as a table
           and a PNG curve (``--out``, default benchmarks/results/ann_recall_qps.png). cellops's
           size-based settings and its ``--recall 0.95`` / ``--recall 0.98`` choices (tuned on the
           corpus's own vectors, as a build does) are marked on ScaNN's curve.
  latency  p50 of ``cellops.rag.search`` vs embedding + a raw ScaNN search (target overhead <= 10%)

    python benchmarks/bench_retrieval.py prepare [--n 6000]   # embed the docstring corpus (cached)
    python benchmarks/bench_retrieval.py [all|ingest|ann|latency] [--n 5000] [--out PNG] [--reps 5]

The corpus is N unique ~96-word docstring windows of the installed packages, parsed from a
seeded shuffle of the .py files until N exist (not all ~30,000 files: that parse ran past 30 minutes),
then shuffled; the first 1,000 are the queries, the next ``--n`` the db. Only MiniLM vectors are
used: ``prepare --n N`` caches the chunks (``chunks.npy``) and their vectors (resumable 2,000-row
``vectors_NNN.npy`` shards, ``allow_pickle=False``) under
~/.cache/cellops-bench/minilm-<weights hash>/nN/ (outside the repo); ann/latency use the smallest
cached corpus with enough rows embedded (an interrupted prepare's prefix is a random sample too)
and stop with a message when there is none (they never switch to other vectors). The issue's
full run is ``prepare --n 51000`` then ``ann --n 50000`` (MiniLM embeds ~40 chunks/s on 2 quiet
cores, ~13 under load 5, so 21-65 minutes of embedding); the default (5,000 db chunks) is for a
loaded machine. cellops itself searches exactly below 20,000 chunks; the benchmark builds ScaNN with the settings cellops would
use at that size (``ann.scann_config``) so that the curve exists at the smaller size too.
Throughput is per CPU-second (best of 3): wall-clock q/s on the shared box swings with the load.

Measured 2026-12-01, ingest --reps 5 on 160 docstring chunks of the stdlib (the site-packages
corpus was not built: its parse ran past 30 minutes at load ~15), load average 12.3 at start and
5.7 at end (NOISY): rag.build median 10.7 chunks/s, 8.00 CPU-s; raw encode 9.1 chunks/s, 8.37
CPU-s; ratio 1.17 (CPU-s ratio 0.96).

Measured 2026-12-01, ann --n 11000 (12,000 of prepare --n 51000's rows embedded in time), load
7.5 at start, 6.7 at end (NOISY: q/cpu-s of one setting timed twice differed by 16-32%; recall is
unaffected): at recall@10 0.95 ScaNN 18,005 q/cpu-s (8/73 leaves, reorder 40) vs HNSW 18,620
(efSearch 16), 0.97x; at 0.98 ScaNN 13,165 (12/73, reorder 40) vs HNSW 9,819 (efSearch 32), 1.34x.
cellops's default held out 0.9595; --recall 0.95 -> 8/40, 0.9588; --recall 0.98 -> 12/40, 0.9813.

Measured 2026-12-01 18:00, ann --n 50000 (prepare --n 51000 finished; near quiet: other processes
kept 0.11 cores busy): at recall@10 0.95 ScaNN 12,459 q/cpu-s (12/333 leaves, reorder 40) vs HNSW
10,024 (efSearch 16), 1.24x; at 0.98 ScaNN 8,797 (24/333, reorder 40) vs HNSW 5,459 (efSearch 48),
1.61x. cellops's default 17/80 held out 0.9740; --recall 0.95 -> 9/40, 0.9465 held out (0.9527 on
the sample); --recall 0.98 -> 26/40, 0.9844 (0.9876 on the sample).

Earlier figure (2026-11-25, quiet cores, 50,000 chunks, cellops's then fixed settings): ScaNN
recall@10 0.975 at 11,587 q/cpu-s vs HNSW efSearch 64 recall 0.990 at 2,295: not equal recall,
so not a comparison; see docs/rag.md for the equal-recall figures.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import resource
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch, load_average

CACHE = Path(os.environ.get("CELLOPS_BENCH_CACHE", Path.home() / ".cache" / "cellops-bench"))
N_QUERIES, SHARD = 1_000, 2_000
FULL_DB = 50_000  # the corpus size: `prepare --n 51000`, `ann --n 50000`
DEFAULT_DB = 5_000  # the default while the shared machine is loaded
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
    """``limit`` unique ~96-word docstring windows of site-packages, deterministic for an install.

    Files are visited in a seeded shuffle of their sorted paths (so the corpus spans many packages,
    not the alphabetically first ones) and parsing stops once ``limit`` chunks exist: listing is
    cheap, parsing all ~30,000 files is what took over 30 minutes under load. The chunks are then
    shuffled with a fixed seed so that the queries (the first rows) and the db come from the same
    files' mix."""
    site = Path(sysconfig.get_paths()["purelib"])
    paths = sorted(site.rglob("*.py"))
    seen: set[str] = set()
    chunks: list[str] = []
    for i in np.random.default_rng(0).permutation(len(paths)):
        for doc in _docstrings(paths[i]):
            words = doc.split()
            for j in range(0, len(words), WORDS_PER_CHUNK):
                piece = words[j:j + WORDS_PER_CHUNK]
                text = " ".join(piece)
                h = hashlib.sha1(text.encode()).hexdigest()
                if len(piece) >= MIN_WORDS and h not in seen:
                    seen.add(h)
                    chunks.append(text)
        if len(chunks) >= limit:
            break
    if len(chunks) < limit:
        raise SystemExit(f"only {len(chunks)} docstring chunks in {site}; ask for --n {len(chunks)} or fewer")
    order = np.random.default_rng(0).permutation(len(chunks))[:limit]
    return [chunks[i] for i in order]


def _save(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` as .npy atomically: an interrupted run never leaves a truncated file."""
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr, allow_pickle=False)
    tmp.replace(path)


def _corpus_dir(n: int) -> Path:
    """The cache folder of an n-chunk corpus: keyed by n (the parse stops at n, so a different n
    is a different corpus) and by the embedder (its weights hash: other weights, other vectors)."""
    from cellops.kernels_lib.models import get_embedder

    return CACHE / f"minilm-{get_embedder('default').weights_hash[:12]}" / f"n{n}"


def corpus_texts(n: int) -> list[str]:
    """The n-chunk corpus's texts, from ``chunks.npy`` (a plain unicode array) or parsed once."""
    d = _corpus_dir(n)
    path = d / "chunks.npy"
    if not path.exists():
        t = time.perf_counter()
        texts = docstring_chunks(n)
        d.mkdir(parents=True, exist_ok=True)
        _save(path, np.array(texts, dtype=str))
        print(f"corpus: {n} unique docstring chunks parsed in {time.perf_counter() - t:.0f}s -> {d}", flush=True)
    return [str(x) for x in np.load(path, allow_pickle=False)]


def prepare(n: int = DEFAULT_DB + N_QUERIES) -> None:
    """Embed the n-chunk corpus (queries first, then the db) into resumable .npy shards."""
    from cellops.kernels_lib.models import get_embedder

    texts, d = corpus_texts(n), _corpus_dir(n)
    emb = get_embedder("default")
    t0 = time.perf_counter()
    done = 0
    for s in range(0, n, SHARD):
        shard = d / f"vectors_{s // SHARD:03d}.npy"
        if shard.exists():
            continue
        v = emb.encode(texts[s:s + SHARD], batch_size=16)  # less padding: ~20% faster than 64 here
        _save(shard, np.asarray(v, dtype=np.float32))
        done += len(v)
        rate = done / (time.perf_counter() - t0)
        print(f"shard {s // SHARD}: {s + len(v)}/{n} embedded ({rate:.1f} chunks/s, load "
              f"{load_average():.1f})", flush=True)


def _embedded(d: Path) -> np.ndarray:
    """The vectors of the corpus in ``d`` embedded so far: the leading run of complete shards."""
    shards = []
    for s in range(len(list(d.glob("vectors_*.npy")))):
        shard = d / f"vectors_{s:03d}.npy"
        if not shard.exists():
            break
        shards.append(np.load(shard, allow_pickle=False))
    return np.concatenate(shards) if shards else np.zeros((0, 384), np.float32)


def corpus_vectors(n_db: int) -> tuple[list[str], np.ndarray]:
    """(texts, MiniLM vectors) of N_QUERIES + n_db chunks: queries first, then the db.

    From the smallest cached corpus with that many rows embedded (a prefix of a larger shuffled
    corpus is itself a random sample, so an interrupted ``prepare --n 51000`` still serves smaller
    runs). Only MiniLM vectors embedded by ``prepare``: with too few, stop and say so (a figure
    from other vectors would not be the one asked for)."""
    need = N_QUERIES + n_db
    root = _corpus_dir(need).parent
    for d in sorted(root.glob("n*"), key=lambda p: int(p.name[1:])):
        vecs = _embedded(d)
        if len(vecs) >= need:
            texts = [str(x) for x in np.load(d / "chunks.npy", allow_pickle=False)[:need]]
            print(f"corpus: {d} ({len(vecs)} embedded), first {need} rows", flush=True)
            return texts, vecs[:need]
    raise SystemExit(f"fewer than {need} MiniLM vectors cached under {root}: run "
                     f"`python benchmarks/bench_retrieval.py prepare --n {need}` first")


def _best_cpu(f, repeat: int = 3) -> float:
    """Best-of CPU seconds: wall time on a shared 2-core box swings 10x with the neighbours' load."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        f()
        best = min(best, time.process_time() - t)
    return best


LEAVES_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
REORDER_GRID = (40, 80, 160, 320)
EF_GRID = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
TARGETS = (0.95, 0.98)


def _recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)]))


def _batched_rate(f, n: int) -> float:
    """Queries per CPU-second of ``f`` answering n queries (warm call, then best of 3)."""
    f()
    return n / _best_cpu(f)


def _at_recall(points: list[dict], target: float) -> dict | None:
    """The fastest swept point whose recall@10 reaches ``target`` (no interpolation)."""
    ok = [p for p in points if p["recall"] >= target]
    return max(ok, key=lambda p: p["qps"]) if ok else None


def _plot(curves: dict[str, list[dict]], marks: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, pts in curves.items():
        front, best = [], 0.0  # the Pareto frontier: each point faster than every more accurate one
        for p in sorted(pts, key=lambda p: -p["recall"]):
            if p["qps"] > best:
                front.append(p)
                best = p["qps"]
        ax.scatter([p["recall"] for p in pts], [p["qps"] for p in pts], s=8, alpha=0.35)
        ax.plot([p["recall"] for p in front], [p["qps"] for p in front], marker="o", ms=3, label=name)
    for m in marks:
        ax.scatter([m["recall"]], [m["qps"]], marker="*", s=140, zorder=5, label=m["label"])
    for t in TARGETS:
        ax.axvline(t, color="grey", ls=":", lw=1)
    ax.set_xlabel("recall@10 vs exact search (held-out queries)")
    ax.set_ylabel("queries per CPU-second (batched, 1 thread)")
    ax.set_yscale("log")
    ax.set_xlim(0.8, 1.001)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def bench_ann(n_db: int, out: Path) -> dict[str, float | None]:
    """Queries/s at equal recall: FAISS HNSW efSearch sweep vs ScaNN leaves x reorder sweep."""
    import faiss

    from cellops.kernels_lib.rag import ann

    _, vecs = corpus_vectors(n_db)
    q, db = vecs[:N_QUERIES], np.ascontiguousarray(vecs[N_QUERIES:])
    print(f"ANN on {len(db)} MiniLM docstring chunks, {len(q)} held-out queries, 1 thread each", flush=True)
    faiss.omp_set_num_threads(1)
    truth, _ = ann.exact_search(db, q, 10)
    exact_qps = _batched_rate(lambda: ann.exact_search(db, q, 10), len(q))
    cfg = ann.scann_config(len(db))  # what cellops chooses for this size (exact below BRUTE_MAX)
    tmp = tempfile.TemporaryDirectory()
    t = time.perf_counter()
    ann.build(db, cfg, Path(tmp.name) / "scann")
    idx = ann.DenseIndex.load(db, cfg, Path(tmp.name) / "scann")
    scann_build = time.perf_counter() - t

    def scann_point(leaves: int, reorder: int, label: str = "") -> dict:
        run = lambda: idx.search(q, 10, leaves=leaves, reorder=reorder)  # noqa: E731
        return {"recall": _recall(run()[0], truth), "qps": _batched_rate(run, len(q)),
                "setting": f"leaves {leaves}/{cfg.num_leaves}, reorder {reorder}", "label": label}

    scann = [scann_point(lv, r) for r in REORDER_GRID for lv in LEAVES_GRID if lv <= cfg.num_leaves]
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(db.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(db)
    hnsw_build = time.perf_counter() - t
    faiss_pts = []
    for ef in EF_GRID:
        hnsw.hnsw.efSearch = ef
        faiss_pts.append({"recall": _recall(hnsw.search(q, 10)[1], truth),
                          "qps": _batched_rate(lambda: hnsw.search(q, 10), len(q)), "setting": f"efSearch {ef}"})
    # cellops's own settings, each one point on ScaNN's curve: the size-based defaults, and what a
    # `--recall T` build picks (tuned on the corpus's own vectors, measured here on held-out ones)
    marks = [scann_point(cfg.leaves_to_search, cfg.reorder, "cellops default")]
    for target in TARGETS:
        tuned = ann.tune(idx, target)
        marks.append(scann_point(tuned.leaves_to_search, tuned.reorder, f"cellops --recall {target}")
                     | {"sample_recall": tuned.measured_recall})
    print(f"ScaNN {cfg.num_leaves} leaves, SOAR, AH 2-dim (build {scann_build:.0f}s); FAISS HNSW M=32 "
          f"(build {hnsw_build:.0f}s); exact numpy {exact_qps:,.0f} q/cpu-s")
    print(f"{'queries per CPU-second at recall@10 >=':40}" + "".join(f"{t:>44}" for t in TARGETS))
    result: dict[str, float | None] = {}
    for name, pts in (("ScaNN (leaves x reorder)", scann), ("FAISS HNSW (efSearch)", faiss_pts)):
        cells = []
        for t in TARGETS:
            p = _at_recall(pts, t)
            result[f"{name.split()[0]}@{t}"] = p["qps"] if p else None
            cells.append(f"{p['qps']:,.0f} ({p['setting']}, {p['recall']:.4f})" if p else "not reached")
        print(f"{name:40}" + "".join(f"{c:>44}" for c in cells))
    for t in TARGETS:
        s, h = result[f"ScaNN@{t}"], result[f"FAISS@{t}"]
        if s and h:
            print(f"ScaNN / HNSW at recall {t}: {s / h:.2f}x")
    for m in marks:
        extra = f", recall on the corpus sample {m['sample_recall']:.4f}" if "sample_recall" in m else ""
        print(f"{m['label']:28} {m['setting']}: held-out recall@10 {m['recall']:.4f}, "
              f"{m['qps']:,.0f} q/cpu-s{extra}")
    _plot({"ScaNN (leaves x reorder)": scann, "FAISS HNSW M=32 (efSearch)": faiss_pts}, marks, out,
          f"{len(db)} MiniLM docstring chunks, {len(q)} held-out queries, 1 thread")
    print(f"curve: {out}", flush=True)
    return result


def _cpu_now() -> float:
    """CPU seconds of this process and of its finished children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(f) -> tuple[float, float]:
    """(wall seconds, CPU seconds incl. children) of one call of ``f``."""
    w, c = time.perf_counter(), _cpu_now()
    f()
    return time.perf_counter() - w, _cpu_now() - c


def bench_ingest(n: int = 160, reps: int = 5) -> float:
    """chunks/s of cellops.rag.build vs a raw sentence-transformers encode of the same chunks:
    ``reps`` repetitions of each, alternating which runs first, medians of wall and CPU time."""
    from cellops.kernels_lib import rag
    from cellops.kernels_lib.models import get_embedder
    from cellops.kernels_lib.rag.store import open_index

    texts = corpus_texts(N_QUERIES + n)[N_QUERIES:]
    model = get_embedder("default").model
    with tempfile.TemporaryDirectory() as d:
        os.environ["CELLOPS_HOME"] = str(Path(d) / ".cellops")
        os.environ["CELLOPS_WANDB"] = "off"
        src = Path(d) / "docs"
        src.mkdir()
        for i, t in enumerate(texts):  # one file per chunk: the build reads, hashes and chunks each
            (src / f"doc{i:04d}.txt").write_text(t)
        model.encode(texts[:16])  # warm
        raw: list[tuple[float, float]] = []
        built: list[tuple[float, float]] = []
        names = iter(range(reps))

        def encode() -> None:
            model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)

        def build() -> None:  # a new name each time: nothing to reuse, every chunk is embedded
            v = rag.build(f"ingest{next(names)}", [str(src)], chunker="token", chunk_size=128,
                          overlap=0, progress=False)
            assert v.counts["chunks"] == n and v.embedded == n

        for rep in range(reps):  # alternate the order: the neighbours' load drifts
            for f, into in (((encode, raw), (build, built)) if rep % 2 == 0 else ((build, built), (encode, raw))):
                into.append(_timed(f))
        assert len(open_index(f"ingest{reps - 1}", __import__("cellops").get_workspace()).chunks) == n
    import statistics

    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in (("raw", raw), ("build", built))}
    ratio = med["raw"][0] / med["build"][0]  # chunks/s of build over chunks/s of raw
    for k, label in (("build", "rag.build"), ("raw", "raw encode")):
        w, c = med[k]
        print(f"ingest {label:10}: median {n / w:.1f} chunks/s ({w:.2f}s wall), {c:.2f} CPU-s "
              f"({c / n * 1e3:.1f} ms/chunk) over {reps} runs")
    print(f"ingest ratio (build/raw chunks/s, medians): {ratio:.2f} (target >= 0.9); CPU-s ratio "
          f"build/raw {med['build'][1] / med['raw'][1]:.2f}", flush=True)
    return ratio


def bench_latency(n_db: int, queries: int = 100) -> float:
    """p50 of cellops.rag.search vs embedding + a raw ScaNN search, on a ScaNN-sized index
    written through the build path (its vectors from the cache, so nothing is re-embedded)."""
    from cellops.kernels_lib import rag
    from cellops.kernels_lib.models import get_embedder
    from cellops.kernels_lib.rag import ingest
    from cellops.kernels_lib.rag.store import open_index

    texts, vecs = corpus_vectors(n_db)
    db_texts, db = texts[N_QUERIES:], vecs[N_QUERIES:]
    qs = texts[:queries]
    with tempfile.TemporaryDirectory() as d:
        os.environ["CELLOPS_HOME"] = str(Path(d) / ".cellops")
        os.environ["CELLOPS_WANDB"] = "off"
        ws = __import__("cellops").get_workspace()
        emb = get_embedder("default")
        chunks = [ingest.Chunk(-1, t, "docstrings.jsonl", str(i)) for i, t in enumerate(db_texts)]
        settings = ingest._settings(emb, "token", 96, 0)
        cfg = ingest.ann.scann_config(len(chunks))  # a ScaNN index even below BRUTE_MAX
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
    print(f"search latency p50 on {len(db)} chunks (MiniLM index, ScaNN): rag.search {p50_api * 1e3:.1f} ms "
          f"vs embed + raw ScaNN {p50_raw * 1e3:.1f} ms: overhead {overhead * 100:+.1f}% (target <= 10%); "
          f"with a sentence-transformers encode instead: {p50_st * 1e3:.1f} ms", flush=True)
    return overhead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="?", default="all", choices=("all", "prepare", "ingest", "ann", "latency"))
    parser.add_argument("--n", type=int, help=f"db chunks (ann, latency; default {DEFAULT_DB}, the issue's "
                        f"{FULL_DB}); with prepare: chunks to embed (default {DEFAULT_DB + N_QUERIES})")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ann_recall_qps.png",
                        help="the ANN curve (PNG)")
    parser.add_argument("--reps", type=int, default=5, help="ingest repetitions (medians)")
    a = parser.parse_args()
    if a.what == "prepare":
        prepare(a.n or DEFAULT_DB + N_QUERIES)
        return
    if a.what in ("all", "ingest"):
        bench_ingest(reps=a.reps)
    if a.what in ("all", "ann"):
        bench_ann(a.n or DEFAULT_DB, a.out)
    if a.what in ("all", "latency"):
        bench_latency(a.n or DEFAULT_DB)


if __name__ == "__main__":
    with LoadWatch():
        main()
