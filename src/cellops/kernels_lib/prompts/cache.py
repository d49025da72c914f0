"""Response cache: the same call to the same weights returns the stored answer.

Key = sha256 of (model URI, weights hash, messages as sent, generation params incl. seed), so a
changed GGUF, a new fine-tune version, a different seed or one changed character in the rendered
prompt is a miss. Stored in the workspace database (table ``prompt_cache``, migration 50), so it
survives kernel restarts and is shared by notebooks, pipelines and the CLI using one workspace.

Only reproducible calls are cached (greedy, or sampled with a fixed seed): caching an unseeded
sample would freeze one random draw. Errors are never cached: the wrapped ``generate`` raises
before anything is stored, and a guard that stops the stream raises through it too.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..models.base import LLM, Generation, GenParams, Message, OnToken
from ..workspace import Workspace, content_hash


def cache_enabled() -> bool:
    """``CELLOPS_CACHE=off`` turns the cache off for a whole process (e.g. a pipeline)."""
    return os.environ.get("CELLOPS_CACHE", "on").lower() not in {"off", "0", "false", "disabled"}


def cacheable(params: GenParams) -> bool:
    return params.temperature == 0 or params.seed is not None


def cache_key(model: str, weights_hash: str, messages: list[Message], params: GenParams) -> str:
    return content_hash({"model": model, "weights": weights_hash, "messages": messages,
                         "params": params.to_dict()})


@dataclass
class CacheStats:
    """Counts for one operation (a run, a grid, a test); thread-safe."""

    hits: int = 0
    misses: int = 0
    uncacheable: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def to_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "uncacheable": self.uncacheable}

    def __str__(self) -> str:
        extra = f", {self.uncacheable} not cacheable" if self.uncacheable else ""
        return f"cache: {self.hits} hits, {self.misses} misses{extra}"


def get(ws: Workspace, key: str) -> Generation | None:
    with ws.db() as conn:
        row = conn.execute("SELECT response FROM prompt_cache WHERE key=?", (key,)).fetchone()
    if row is None:
        return None
    d = json.loads(row[0])
    return Generation(d["text"], d["model"], d["prompt_tokens"], d["completion_tokens"],
                      d["latency_s"], d.get("ttft_s"), d.get("finish_reason", "stop"),
                      {"cached": True, "cached_at": d.get("created_at")})


def put(ws: Workspace, key: str, weights_hash: str, gen: Generation) -> None:
    now = time.time()
    blob = json.dumps({"text": gen.text, "model": gen.model, "prompt_tokens": gen.prompt_tokens,
                       "completion_tokens": gen.completion_tokens, "latency_s": gen.latency_s,
                       "ttft_s": gen.ttft_s, "finish_reason": gen.finish_reason, "created_at": now})
    with ws.db(write=True) as conn:
        conn.execute("INSERT OR REPLACE INTO prompt_cache VALUES (?, ?, ?, ?, ?)",
                     (key, gen.model, weights_hash, blob, now))


def stats(ws: Workspace) -> dict[str, Any]:
    """Entries per model in the workspace cache."""
    with ws.db() as conn:
        rows = conn.execute(
            "SELECT model, COUNT(*), SUM(LENGTH(response)) FROM prompt_cache GROUP BY model ORDER BY model"
        ).fetchall()
    return {r[0]: {"entries": r[1], "bytes": r[2] or 0} for r in rows}


def clear(ws: Workspace, model: str | None = None) -> int:
    """Delete cached responses (of one model URI, or all); returns how many were deleted."""
    with ws.db(write=True) as conn:
        if model is None:
            cur = conn.execute("DELETE FROM prompt_cache")
        else:
            cur = conn.execute("DELETE FROM prompt_cache WHERE model=?", (model,))
        return cur.rowcount


class CachedLLM:
    """Wraps any LLM; ``generate`` answers from the cache when it can.

    A hit replays the stored text through ``on_token`` in one piece, so a guard's stream checker
    and the live view still see it; the Generation keeps the original latency and token counts
    (``meta['cached']`` is True) so latency assertions test the model, not the cache.
    """

    def __init__(self, llm: LLM, ws: Workspace, stats: CacheStats | None = None,
                 enabled: bool = True) -> None:
        self.llm, self.ws = llm, ws
        self.stats = stats if stats is not None else CacheStats()
        self.enabled = enabled and cache_enabled()
        self.uri = llm.uri
        self.supports_concurrency = llm.supports_concurrency
        self._weights: str | None = None

    def weights_hash(self) -> str:
        if self._weights is None:  # hashing a folder stats every file: once per wrapper
            self._weights = self.llm.weights_hash()
        return self._weights

    def generate(self, messages: list[Message], params: GenParams,
                 on_token: OnToken | None = None) -> Generation:
        if not self.enabled:
            return self.llm.generate(messages, params, on_token)
        if not cacheable(params):
            self.stats.add("uncacheable")
            return self.llm.generate(messages, params, on_token)
        key = cache_key(self.uri, self.weights_hash(), messages, params)
        hit = get(self.ws, key)
        if hit is not None:
            self.stats.add("hits")
            if on_token is not None and hit.text:
                on_token(hit.text)
            return hit
        self.stats.add("misses")
        gen = self.llm.generate(messages, params, on_token)  # raises on error: nothing stored
        if gen.finish_reason != "guard":
            put(self.ws, key, self.weights_hash(), gen)
        return gen
