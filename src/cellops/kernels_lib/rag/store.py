"""Index versions on disk and in memory.

An index version (kind ``index``) is a folder written atomically by :mod:`.build`:

    chunks.jsonl    one JSON object per chunk (text, source, doc_id, offsets, heading, file hash)
    vectors.npy     float32 (n, dim), L2-normalised, row i = chunk i
    scann/          ScaNN searcher (only above ann.BRUTE_MAX chunks; relative asset paths)
    bm25/           bm25s sparse index (npy + JSON)
    manifest.json   sha256 + size of every file above, checked before anything is parsed, so a
                    corrupt or tampered file gives one clear error instead of a crash in C++

Loaded indexes are cached per process (versions are immutable, so the cache never goes stale).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WorkspaceError
from ..jsonl import read_jsonl
from ..workspace import Version, Workspace
from .ann import AnnConfig
from .indexes import LEXICAL, index_type

KIND = "index"


@dataclass(frozen=True)
class Chunk:
    id: int
    text: str
    source: str
    doc_id: str
    start: int = 0
    end: int = 0
    heading: str = ""
    file_hash: str = ""
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def embed_text(self) -> str:
        """What the embedder reads: the heading path gives a section's context to its body."""
        if self.heading and not self.text.startswith(self.heading):
            return f"{self.heading}\n{self.text}"
        return self.text

    def to_json(self) -> dict[str, Any]:
        d = {"text": self.text, "source": self.source, "doc_id": self.doc_id, "start": self.start,
             "end": self.end, "heading": self.heading, "file_hash": self.file_hash}
        if self.meta:
            d["meta"] = self.meta
        return d


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    files = {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    (folder / "manifest.json").write_text(json.dumps({"files": files}, indent=1))


def rebuild_hint(name: str) -> str:
    return (f"rebuild it with `%%rag build {name}` (or cellops.rag.build('{name}', sources)); "
            f"`%rag show {name}` lists its sources")


def verify(folder: Path, name: str) -> None:
    """Check every artifact file against the manifest (missing, truncated, altered, extra)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise WorkspaceError(f"index '{name}' is corrupt (manifest.json missing or unreadable); "
                             + rebuild_hint(name)) from None
    for rel, meta in manifest.items():
        p = folder / rel
        if not p.is_file() or p.stat().st_size != meta["size"] or sha256_file(p) != meta["sha256"]:
            raise WorkspaceError(f"index '{name}' is corrupt ({rel} is missing or damaged); "
                                 + rebuild_hint(name))
    extra = [p.name for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"
             and p.relative_to(folder).as_posix() not in manifest]
    if extra:
        raise WorkspaceError(f"index '{name}' has unexpected files ({', '.join(extra[:3])}); "
                             + rebuild_hint(name))


def read_chunks(folder: Path) -> list[Chunk]:
    chunks = []
    for i, (_, d) in enumerate(read_jsonl(folder / "chunks.jsonl")):  # a bad row raises: damaged
        chunks.append(Chunk(i, d["text"], d["source"], d["doc_id"], d.get("start", 0),
                            d.get("end", 0), d.get("heading", ""), d.get("file_hash", ""),
                            d.get("meta") or {}))
    return chunks


class Index:
    """One loaded index version: chunks, vectors, the dense searcher and (lazily) BM25."""

    def __init__(self, version: Version, folder: Path) -> None:
        self.version, self.folder = version, folder
        self.name = version.name
        self.embedder_uri: str = version.content["embedder"]
        verify(folder, self.name)
        try:
            self.chunks = read_chunks(folder)
            vectors = np.load(folder / "vectors.npy", mmap_mode="r", allow_pickle=False)
            cfg = AnnConfig.from_dict(version.content.get("ann", {}))
            self.dense = index_type(cfg.kind, "dense").load(vectors, folder / "scann", cfg)
        except WorkspaceError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise WorkspaceError(f"index '{self.name}' cannot be loaded ({type(e).__name__}: {e}); "
                                 + rebuild_hint(self.name)) from None
        if len(self.chunks) != len(self.dense):
            raise WorkspaceError(f"index '{self.name}' is inconsistent ({len(self.chunks)} chunks, "
                                 f"{len(self.dense)} vectors); " + rebuild_hint(self.name))
        self._bm25: Any = None
        self._lock = threading.Lock()

    @property
    def ref(self) -> str:
        return self.version.ref

    @property
    def bm25(self) -> Any:
        with self._lock:
            if self._bm25 is None:
                kind = self.version.content.get("lexical", LEXICAL)
                try:
                    self._bm25 = index_type(kind, "lexical").load(len(self.chunks), self.folder / "bm25",
                                                                  AnnConfig.from_dict(self.version.content.get("ann", {})))
                except (OSError, ValueError, KeyError) as e:
                    raise WorkspaceError(f"index '{self.name}' BM25 part cannot be loaded ({e}); "
                                         + rebuild_hint(self.name)) from None
            return self._bm25


_cache: dict[Path, Index] = {}
_cache_lock = threading.Lock()


def open_index(ref: str, ws: Workspace) -> Index:
    """The index version named by ``ref`` ('NAME', 'NAME@3', 'NAME@prod'), loaded once."""
    v = ws.resolve(KIND, ref)
    folder = ws.artifact_dir(KIND, v.name, v.version)
    with _cache_lock:
        idx = _cache.get(folder)
        if idx is None or idx.version.hash != v.hash:  # a fresh workspace may reuse the path
            if not folder.is_dir():
                raise WorkspaceError(f"index '{v.ref}' has no files at {folder}; " + rebuild_hint(v.name))
            idx = _cache[folder] = Index(v, folder)
        return idx


def forget(folder: Path | None = None) -> None:
    """Drop cached indexes (all, or one folder): tests and `%rag` after a manual repair."""
    with _cache_lock:
        if folder is None:
            _cache.clear()
        else:
            _cache.pop(folder, None)
