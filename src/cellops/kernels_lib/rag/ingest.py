"""``build``: sources -> chunks -> embeddings -> dense (ScaNN / exact) + BM25 -> an index version.

Incremental: a file whose content hash is in the previous version (same embedder and chunker
settings) keeps its chunks and vectors; only new or changed files are read and embedded, and
files that are gone are dropped. Crash-safe: everything is written to a staging folder that
becomes the version in one rename + commit. Embeddings are also saved in groups inside that
staging folder, and its path is kept in the workspace state, so the build after a killed one
reuses what was already embedded instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import html
from ..errors import InvalidInputError, WorkspaceError
from ..models import get_embedder
from ..workspace import Version, Workspace, content_hash, get_workspace
from . import ann, lexical, loaders
from .chunkers import check_sizes, chunkers
from .indexes import LEXICAL, index_type
from .store import KIND, Chunk, forget, read_chunks, verify, write_manifest

Progress = Callable[[int, int], None]  # (embedded so far, total to embed)
GROUP = 512  # chunks embedded (and checkpointed) per group
DEFAULT_SIZE, DEFAULT_OVERLAP = 128, 16


@dataclass
class IndexVersion:
    """What ``build`` returns: the version plus what this build did."""

    version: Version
    created: bool
    skipped: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0  # chunks embedded by this build
    reused: int = 0  # chunks carried over from the previous version (or a killed build)
    seconds: float = 0.0

    name = property(lambda self: self.version.name)
    ref = property(lambda self: self.version.ref)
    content = property(lambda self: self.version.content)
    counts = property(lambda self: self.version.content["counts"])

    def _summary(self) -> str:
        c = self.counts
        state = "new version" if self.created else "unchanged, still"
        return (f"index {self.ref} ({state}): {c['files']} files, {c['documents']} documents, "
                f"{c['chunks']} chunks · embedded {self.embedded}, reused {self.reused} · "
                f"{_ann_summary(self.content['ann'])} · {self.seconds:.1f}s")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        text = self._summary()
        body = ""
        if self.skipped:
            text += "\nskipped:\n" + "\n".join(f"  {s}: {r}" for s, r in self.skipped)
            body = "<p>skipped:</p>" + html.table(("source", "reason"), self.skipped)
        return {"text/plain": text, "text/html": html.box(text.splitlines()[0], body)}

    def __repr__(self) -> str:
        return self._summary()


def _ann_summary(a: dict[str, Any]) -> str:
    """'scann (17 of 340 leaves, reorder 80, recall@10 0.981 for target 0.98)' or 'brute'."""
    out = a["kind"]
    if a["kind"] == "scann":
        out += f" ({a['leaves_to_search']} of {a['num_leaves']} leaves, reorder {a['reorder']}"
        out += (f", recall@10 {a['measured_recall']:.3f} for target {a['target_recall']})"
                if a.get("target_recall") else ")")
    elif a.get("target_recall"):
        out += " (exact: recall 1)"
    return out


def _settings(embedder: Any, chunker: str, size: int, overlap: int) -> dict[str, Any]:
    return {"embedder": embedder.uri, "embedder_hash": embedder.weights_hash, "chunker": chunker,
            "chunk_size": size, "overlap": overlap}


def _text_key(settings_hash: str, text: str) -> str:
    return hashlib.sha1(f"{settings_hash}\0{text}".encode()).hexdigest()


def _previous(ws: Workspace, name: str, settings: dict[str, Any]) -> tuple[Version | None, bool, dict[str, list[Chunk]], np.ndarray | None]:
    """The latest version, whether its files are intact, and (when intact and built with the
    same settings) its chunks grouped by file hash with its vectors, for reuse."""
    versions = ws.list_versions(KIND, name)
    if not versions:
        return None, False, {}, None
    prev = versions[-1]
    folder = ws.artifact_dir(KIND, prev.name, prev.version)
    try:
        verify(folder, name)
    except WorkspaceError:  # damaged: embed everything again and repair it
        return prev, False, {}, None
    if any(prev.content.get(k) != v for k, v in settings.items()):
        return prev, True, {}, None
    chunks = read_chunks(folder)
    vectors = np.load(folder / "vectors.npy", mmap_mode="r", allow_pickle=False)
    by_file: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_file.setdefault(c.file_hash, []).append(c)
    return prev, True, by_file, vectors


def _chunk_file(sf: loaders.SourceFile, chunker: str, size: int, overlap: int) -> list[Chunk]:
    split = chunkers.get(chunker)
    out = []
    for doc in sf.documents:
        for sp in split(doc.text, doc.kind, size, overlap):
            text = doc.text[sp.start:sp.end]
            if text.strip():
                out.append(Chunk(-1, text, doc.source, doc.doc_id, sp.start, sp.end, sp.heading,
                                 sf.hash, doc.meta))
    return out


def _load_partial(folder: Path | None) -> dict[str, np.ndarray]:
    """Vectors checkpointed by a killed build: {text key: vector}."""
    found: dict[str, np.ndarray] = {}
    if folder is None or not (folder / "partial").is_dir():
        return found
    for keys_file in sorted((folder / "partial").glob("*.json")):
        try:
            keys = json.loads(keys_file.read_text())
            vecs = np.load(keys_file.with_suffix(".npy"), allow_pickle=False)
        except (OSError, ValueError):
            continue  # the group being written when the build died
        if len(keys) == len(vecs):
            found.update(zip(keys, vecs, strict=True))
    return found


def _embed(embedder: Any, texts: list[str], keys: list[str], partial: dict[str, np.ndarray],
           checkpoint: Path, progress: Progress | None) -> np.ndarray:
    """Embed ``texts`` (longest first, in groups, checkpointed); reuse vectors found in ``partial``."""
    out = np.zeros((len(texts), embedder.dim), np.float32)
    todo = []
    for i, k in enumerate(keys):
        if k in partial:
            out[i] = partial[k]
        else:
            todo.append(i)
    # length-sorted groups keep padding (and so wasted compute) low, as one big encode call would
    todo.sort(key=lambda i: -len(texts[i]))
    checkpoint.mkdir(parents=True, exist_ok=True)
    # groups a killed build saved keep their files: number the new ones after them
    first = 1 + max((int(p.stem) for p in checkpoint.glob("*.npy") if p.stem.isdigit()), default=-1)
    done = len(texts) - len(todo)
    if progress:
        progress(done, len(texts))
    for g in range(0, len(todo), GROUP):
        ids = todo[g:g + GROUP]
        vecs = embedder.encode([texts[i] for i in ids])
        out[ids] = vecs
        stem = f"{first + g // GROUP:05d}"
        np.save(checkpoint / f"{stem}.npy", vecs)
        (checkpoint / f"{stem}.json").write_text(json.dumps([keys[i] for i in ids]))
        done += len(ids)
        if progress:
            progress(done, len(texts))
    return out


def _source_labels(sources: Any) -> list[str]:
    if isinstance(sources, dict):
        return [str(k) for k in sources]
    if isinstance(sources, (str, Path)):
        return [s.strip() for s in str(sources).splitlines() if s.strip()]
    return [_source_label(s, i) for i, s in enumerate(sources)]


def _source_label(s: Any, i: int) -> str:
    return str(s) if isinstance(s, (str, Path)) else f"<{type(s).__name__} data{i}>"


def build(name: str, sources: Any, *, embedder: str = "default", chunker: str = "auto",
          chunk_size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP,
          workspace: Workspace | None = None, base: str | Path | None = None,
          progress: Progress | bool | None = True, recall: float | None = None,
          stem: bool = True) -> IndexVersion:
    """Build (or incrementally rebuild) index ``name`` from ``sources``; returns the version.

    ``sources``: a path / folder / glob (or several, one per line), a list of them, a DataFrame,
    a list of strings or records, or a dict {label: any of these}. ``progress``: True for a
    terminal bar, a callback ``(done, total)``, or False. ``recall``: aim the ScaNN search at
    this recall@10 (measured on a sample of the corpus's own vectors vs exact search; the chosen
    leaves-searched / reorder and the measured recall go into the version's ``ann`` settings).
    ``stem``: BM25 with the Snowball English stemmer (the default); False tokenizes without
    stemming (``lexical.PLAIN``, as builds before session 7 did). The tokenizer is recorded in
    the version (``bm25_tokenizer``) and the BM25 folder, and searches use the recorded one.
    """
    t0 = time.perf_counter()
    ann.check_recall(recall)  # before any embedding
    ws = workspace or get_workspace()
    from ..workspace import check_name

    check_name(name)
    check_sizes(chunk_size, overlap)
    chunkers.get(chunker)  # unknown chunker: fail before any work
    with ws.build_lock(KIND, name):  # one build per name: a second one fails, naming the pid
        return _build(ws, name, sources, embedder, chunker, chunk_size, overlap,
                      Path(base or Path.cwd()).resolve(), progress, t0, recall,
                      lexical.DEFAULT if stem else lexical.PLAIN)


def _build(ws: Workspace, name: str, sources: Any, embedder: str, chunker: str, chunk_size: int,
           overlap: int, base_dir: Path, progress: Progress | bool | None, t0: float,
           recall: float | None = None, tokenizer: lexical.Tokenizer = lexical.DEFAULT) -> IndexVersion:
    items, skipped = loaders.expand(sources, base_dir, ws)
    emb = get_embedder(embedder)
    settings = _settings(emb, chunker, chunk_size, overlap)
    settings_hash = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    prev, intact, prev_by_file, prev_vecs = _previous(ws, name, settings)

    chunks: list[Chunk] = []
    vec_rows: list[np.ndarray | None] = []  # a reused vector, or None (to embed)
    files: dict[str, str] = {}
    n_docs = 0
    for item in items:
        try:
            sf = (loaders.load_object(*item) if isinstance(item, tuple)
                  else _load_changed(item, base_dir, prev_by_file))
        except InvalidInputError as e:
            label = item[0] if isinstance(item, tuple) else loaders._rel(item, base_dir)
            skipped.append((label, str(e)))
            continue
        skipped += [(f"{sf.source} line {n}", why) for n, why in sf.bad_rows]
        if sf.source in files:  # listed twice (a folder and a glob): keep the first
            continue
        files[sf.source] = sf.hash
        if sf.hash in prev_by_file and prev_vecs is not None:
            old = prev_by_file[sf.hash]
            chunks += [Chunk(-1, c.text, sf.source if c.source == old[0].source else c.source,
                             c.doc_id, c.start, c.end, c.heading, c.file_hash, c.meta) for c in old]
            vec_rows += [prev_vecs[c.id] for c in old]
            n_docs += len({(c.doc_id, c.meta.get("page")) for c in old})
            continue
        new = _chunk_file(sf, chunker, chunk_size, overlap)
        n_docs += len({(c.doc_id, c.meta.get("page")) for c in new})
        chunks += new
        vec_rows += [None] * len(new)
    if not chunks:
        why = "; ".join(f"{s}: {r}" for s, r in skipped[:3]) or "the sources hold no text"
        raise InvalidInputError(f"nothing to index for '{name}' ({why}); check the sources")

    counts = {"files": len(files), "documents": n_docs, "chunks": len(chunks), "skipped": len(skipped)}
    corpus_hash = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()
    cfg = ann.choose(len(chunks), emb.dim)
    if recall is not None:  # the dense build tunes its query-time settings for it
        cfg = replace(cfg, target_recall=recall)
    content = {**settings, "corpus_hash": corpus_hash, "counts": counts, "dim": emb.dim,
               "sources": _source_labels(sources),
               "files": files, "skipped": [list(s) for s in skipped], "ann": cfg.to_dict(),
               "bm25": "bm25s", "bm25_tokenizer": tokenizer.to_dict()}
    # a version built with another tokenizer (or before stemming: none recorded) is rebuilt,
    # reusing its vectors
    if intact and prev is not None and prev.content.get("corpus_hash") == corpus_hash and \
            prev.content.get("bm25_tokenizer") == content["bm25_tokenizer"] and \
            all(prev.content.get(k) == v for k, v in settings.items()) and \
            prev.content.get("ann", {}).get("target_recall", 0.0) == cfg.target_recall:
        return IndexVersion(prev, False, skipped, 0, len(chunks), time.perf_counter() - t0)
    repair = prev if prev is not None and not intact else None
    return _write(ws, name, content, chunks, vec_rows, emb, settings_hash, cfg, skipped, progress,
                  t0, repair, tokenizer)


def _load_changed(path: Path, base: Path, prev_by_file: dict[str, list[Chunk]]) -> loaders.SourceFile:
    """Hash first; parse only files whose content is new (the expensive part for PDFs)."""
    if path.suffix.lower() not in loaders.loaders:
        raise InvalidInputError(f"unsupported file type '{path.suffix or path.name}'")
    try:
        h = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise InvalidInputError(f"unreadable ({e.strerror})") from None
    if h in prev_by_file:
        return loaders.SourceFile(loaders._rel(path, base), h, [])
    return loaders.load_file(path, base)


def _write(ws: Workspace, name: str, content: dict[str, Any], chunks: list[Chunk],
           vec_rows: list[np.ndarray | None], emb: Any, settings_hash: str, cfg: ann.AnnConfig,
           skipped: list[tuple[str, str]], progress: Progress | bool | None, t0: float,
           repair: Version | None = None, tokenizer: lexical.Tokenizer = lexical.DEFAULT) -> IndexVersion:
    state_key = f"rag.building.{name}"
    # the folder a killed build of this name left becomes ours (we hold the name's build lock),
    # so its checkpointed vectors are reused now and survive a second kill as well
    staging = ws.resume_staging(state_key)
    for p in staging.iterdir():  # what a build killed while writing its final files left
        if p.is_dir() and p.name != "partial":
            shutil.rmtree(p)
        elif not p.is_dir():
            p.unlink()
    partial = _load_partial(staging)
    ws.sweep_staging()
    todo = [i for i, v in enumerate(vec_rows) if v is None]
    texts = [chunks[i].embed_text for i in todo]
    keys = [_text_key(settings_hash, t) for t in texts]
    cb, bar = _progress(progress, len(texts))
    try:
        new_vecs = _embed(emb, texts, keys, partial, staging / "partial", cb)
    finally:
        if bar is not None:
            bar.close()
    recovered = sum(k in partial for k in keys)
    vectors = np.zeros((len(chunks), emb.dim), np.float32)
    for i, v in enumerate(vec_rows):
        if v is not None:
            vectors[i] = v
    vectors[todo] = new_vecs
    shutil.rmtree(staging / "partial")
    with open(staging / "chunks.jsonl", "w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps(c.to_json(), ensure_ascii=False) + "\n")
    np.save(staging / "vectors.npy", vectors)
    built = index_type(cfg.kind, "dense").build(vectors, staging / "scann", cfg)
    if built is not None:  # the settings a recall-aimed build chose, and the recall it measured
        content["ann"] = built.to_dict()
    index_type(LEXICAL, "lexical").build([c.embed_text for c in chunks], staging / "bm25", cfg,
                                         tokenizer=tokenizer)
    write_manifest(staging)
    if repair is not None and content_hash(content) == repair.hash:
        version, created = repair, False
        _replace_artifact(ws, repair, staging)
    else:
        version, created = ws.save_version(KIND, name, content, artifact=staging)
    ws.set_state(state_key, None)
    result = IndexVersion(version, created, skipped, len(todo) - recovered,
                          len(chunks) - len(todo) + recovered, time.perf_counter() - t0)
    ws.record_run("rag-build", {"index": version.ref, "corpus_hash": content["corpus_hash"],
                                "counts": content["counts"], "embedded": result.embedded,
                                "reused": result.reused, "seconds": result.seconds,
                                "skipped": content["skipped"]}, name, version.version)
    return result


def _replace_artifact(ws: Workspace, version: Version, staging: Path) -> None:
    """Repair a damaged version whose rebuilt content is identical: swap its folder for the new
    one (the version's content, and so its meaning, does not change)."""
    dest = ws.artifact_dir(KIND, version.name, version.version)
    trash = ws.staging_dir()
    if dest.exists():
        dest.replace(trash / "damaged")
    staging.replace(dest)
    shutil.rmtree(trash, ignore_errors=True)
    forget(dest)


def _progress(progress: Progress | bool | None, total: int) -> tuple[Progress | None, Any]:
    if callable(progress):
        return progress, None
    if not progress or total == 0:
        return None, None
    from tqdm.std import tqdm

    bar = tqdm(total=total, desc="embedding", unit="chunk")

    def cb(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return cb, bar
