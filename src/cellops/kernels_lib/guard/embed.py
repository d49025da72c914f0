"""Shared embedding work for the embedding checks, done once per text.

``TextCtx`` embeds the text under check at most once (all embedding checks read
``ctx.embeddings``); exemplar matrices and trained classifier weights are cached in the process
and as ``.npy``/``.npz`` files in the user cache (``~/.cache/cellops/guard/``), keyed by a hash of
the exemplars and the embedder's weights: they derive from nothing else, so every workspace and
kernel on the machine shares them and only the first ``%guard on`` embeds ~1,800 exemplars (~20 s).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..lru import LRU
from ..models.weights import USER_CACHE

EMBEDDER = "default"
SEGMENT_CHARS = 1200  # ~250 MiniLM tokens: longer texts are embedded as several segments
MAX_SEGMENTS = 12  # bounded work on huge texts: first 8 and last 4 segments
_SENT_RE = re.compile(r"(?<=[.!?。])\s+|\n{1,}")

_mem: dict[str, Any] = {}
_mem_lock = threading.Lock()
_text_cache: LRU[str, np.ndarray] = LRU(2048)


def embedder() -> Any:
    from ..models import get_embedder

    return get_embedder(EMBEDDER)


def encode(texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts`` (L2-normalised float32), reusing recent results: the same prompt is often
    checked again (input rail, then an ad-hoc check, then eval)."""
    found: dict[str, np.ndarray] = {}
    for t in dict.fromkeys(texts):
        hit, vec = _text_cache.lookup(t)
        if hit:
            found[t] = vec  # type: ignore[assignment]
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        for t, v in zip(missing, embedder().encode(missing), strict=True):
            found[t] = v
            _text_cache.put(t, v)
    if not texts:
        return np.zeros((0, 384), np.float32)
    return np.stack([found[t] for t in texts])  # from this call's own map: an eviction cannot lose one


def forget_texts() -> None:
    """Drop the recent-text embeddings (a benchmark's arms each start from the same cache state)."""
    _text_cache.clear()


def segments(text: str) -> list[str]:
    """The parts of ``text`` that get embedded: whole if short, else bounded windows."""
    text = text.strip()
    if len(text) <= SEGMENT_CHARS:
        return [text] if text else [""]
    parts = [text[i:i + SEGMENT_CHARS] for i in range(0, len(text), SEGMENT_CHARS)]
    if len(parts) > MAX_SEGMENTS:
        parts = parts[:8] + parts[-4:]
    return parts


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence-like piece of ``text`` (end exclusive)."""
    out, pos = [], 0
    for m in _SENT_RE.finditer(text):
        if text[pos:m.start()].strip():
            out.append((pos, m.start()))
        pos = m.end()
    if text[pos:].strip():
        out.append((pos, len(text)))
    return out


class TextCtx:
    """One text under check, with lazily computed, shared embeddings."""

    def __init__(self, text: str, rail: str, context: list[str] | None = None) -> None:
        self.text, self.rail, self.context = text, rail, context
        self._emb: np.ndarray | None = None
        self.embed_ms = 0.0
        # results the checks share, e.g. a judge's verdict when harmful and injection both ask it
        self.shared: dict[Any, Any] = {}

    @property
    def embeddings(self) -> np.ndarray:
        """(n_segments, dim) embeddings of the text; computed on first use."""
        if self._emb is None:
            import time

            t0 = time.perf_counter()
            self._emb = encode(segments(self.text))
            self.embed_ms += (time.perf_counter() - t0) * 1000
        return self._emb


# -- exemplars --------------------------------------------------------------------------------
EXEMPLAR_DIR = Path(__file__).parent / "exemplars"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    from ..errors import InvalidInputError, NotFoundError

    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"exemplar file {p} not found; give a JSONL file of {{\"text\", \"label\"}} rows")
    from ..jsonl import read_jsonl as read_lines

    rows = []
    for i, row in read_lines(p):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or "label" not in row:
            raise InvalidInputError(f"{p}:{i} needs a string 'text' and a 'label'")
        rows.append(row)
    return rows


def builtin_exemplars(name: str) -> list[dict[str, Any]]:
    return read_jsonl(EXEMPLAR_DIR / f"{name}.jsonl")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _cache_dir() -> Path | None:
    d = USER_CACHE / "guard"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return d


def _cached(key: str, ext: str, load: Any, compute: Any, save: Any) -> Any:
    """``compute()`` once per machine: kept in memory and as ``<key><ext>`` in the user cache
    (written atomically: a concurrent reader never sees half a file). A file
    that ``load`` rejects (returns None or raises OSError/ValueError/KeyError) is recomputed."""
    with _mem_lock:
        if key in _mem:
            return _mem[key]
    d = _cache_dir()
    path = d / f"{key}{ext}" if d else None
    out = None
    if path is not None and path.exists():
        try:
            out = load(path)
        except (OSError, ValueError, KeyError):
            out = None
    if out is None:
        out = compute()
        if path is not None:
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp{ext}")
            save(tmp, out)
            tmp.replace(path)
    with _mem_lock:
        _mem[key] = out
    return out


def exemplar_matrix(texts: Sequence[str], emb: Any = None) -> np.ndarray:
    """Embeddings of ``texts`` by ``emb`` (default: the guard's embedder), cached in memory and as
    ``emb-<hash>.npy`` in the user cache."""
    emb = emb or embedder()

    def load(path: Path) -> np.ndarray | None:
        mat = np.load(path)
        return mat if mat.shape[0] == len(texts) else None

    return _cached("emb-" + _digest([emb.weights_hash, list(texts)]), ".npy", load,
                   lambda: emb.encode(list(texts), batch_size=64), np.save)


# -- a small logistic-regression layer over embeddings (+ optional cue features) -------------
def train_logreg(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 400) -> tuple[np.ndarray, float]:
    """Binary logistic regression by Adam on the full batch, classes weighted to balance.

    numpy only: a few hundred exemplars train in well under a second, and this keeps the guard
    free of an sklearn dependency.
    """
    n, d = x.shape
    pos = max(float(y.sum()), 1.0)
    neg = max(float(n - y.sum()), 1.0)
    sw = np.where(y > 0, n / (2 * pos), n / (2 * neg)).astype(np.float64)
    w, b = np.zeros(d), 0.0
    mw, vw, mb, vb = np.zeros(d), np.zeros(d), 0.0, 0.0
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    xd = x.astype(np.float64)
    for t in range(1, iters + 1):
        p = 1 / (1 + np.exp(-(xd @ w + b)))
        g = sw * (p - y)
        gw = xd.T @ g / n + l2 * w
        gb = float(g.mean())
        mw = b1 * mw + (1 - b1) * gw
        vw = b2 * vw + (1 - b2) * gw * gw
        mb = b1 * mb + (1 - b1) * gb
        vb = b2 * vb + (1 - b2) * gb * gb
        w -= lr * (mw / (1 - b1**t)) / (np.sqrt(vw / (1 - b2**t)) + eps)
        b -= lr * (mb / (1 - b1**t)) / (np.sqrt(vb / (1 - b2**t)) + eps)
    return w.astype(np.float32), float(b)


def cached_logreg(key_obj: Any, build: Any, l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """Weights of a classifier identified by ``key_obj`` (which must cover ``l2``); ``build()`` ->
    (x, y) trains it once."""
    def load(path: Path) -> tuple[np.ndarray, float]:
        z = np.load(path)
        return z["w"], float(z["b"])

    def save(path: Path, wb: tuple[np.ndarray, float]) -> None:
        np.savez(path, w=wb[0], b=np.float32(wb[1]))

    return _cached("lr-" + _digest([embedder().weights_hash, key_obj]), ".npz", load,
                   lambda: train_logreg(*build(), l2=l2), save)


def sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    return 1 / (1 + np.exp(-z))
