"""The scoring context of a llama.cpp model: next-token logits and the final hidden state.

``choice_probabilities`` (P(yes) judges, the reranker) and ``hidden_state`` (the guard cascade's
probes) read a llama.cpp context of their own, beside the one that generates, on the same mmap'd
weights. So an answer never evicts the judge's policy and worked examples from the KV cache (nor
a judge the answer's prompt), and the input rail's probe and the injection judge evaluate that
shared start once, not once each.

Prompts are evaluated in the caller's chunks (``chunk_starts``), the cached chunks of the last
prompt reused as ``_reusable`` allows, so each result is the one an evaluation from zero gives;
asking again for the last prompt's numbers evaluates nothing. A hidden state needs embedding
mode, in which llama.cpp computes every token's vocabulary logits (about 15% more time on a 1.5B
model): it is on for the last chunk of a hidden-state call only. The KV cache and the hidden
state are the same with it on or off, but the logits are not always (a 128-row vocabulary matmul
rounds differently from a 1-row one: up to 2e-4 in P(yes) on qwen-0.5b), so logits always come
from a decode in the ordinary mode, and a hidden state never from one (a prompt's two kinds of
numbers are two evaluations of its last chunk).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from .llamacpp import _plain_cpu_buffers, _reusable


class ScoreContext:
    """A llama.cpp context that evaluates prompts for their last token's numbers, never samples."""

    def __init__(self, path: Path, n_ctx: int, n_batch: int) -> None:
        import llama_cpp

        with _plain_cpu_buffers():
            self._llama = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 2,
                                          n_batch=n_batch, verbose=False, seed=0)
        self._lock = threading.Lock()
        self._tokens: list[int] = []  # the prompt the KV cache holds, evaluated in chunks from _starts
        self._starts: list[int] = []
        self._last: tuple[bool, np.ndarray] | None = None  # that prompt's numbers: (hidden?, vector)
        self._embeddings = False  # whether the context is in embedding mode now

    def close(self) -> None:
        self._llama.close()

    def logits(self, tokens: list[int], starts: list[int]) -> np.ndarray:
        """The next-token logits after ``tokens``, evaluated in chunks from ``starts``."""
        return self._score(tokens, starts, hidden=False)

    def hidden_state(self, tokens: list[int], starts: list[int]) -> np.ndarray:
        """The final hidden state (after the output norm, before the vocabulary head) at the last of
        ``tokens``, evaluated in chunks from ``starts``."""
        return self._score(tokens, starts, hidden=True)

    def _score(self, tokens: list[int], starts: list[int], hidden: bool) -> np.ndarray:
        with self._lock:
            if self._last is not None and self._last[0] == hidden and tokens == self._tokens and starts == self._starts:
                return self._last[1].copy()  # the caller's own array, as after an evaluation
            keep = _reusable(self._tokens, self._starts, tokens, starts)
            self._last = None
            try:
                self._evaluate(tokens, starts, keep, hidden)
            except BaseException:
                self._tokens, self._starts = [], []  # what the KV cache holds is unknown now
                raise
            self._tokens, self._starts = list(tokens), list(starts)
            self._last = (hidden, self._read(hidden))
            return self._last[1].copy()

    def _evaluate(self, tokens: list[int], starts: list[int], keep: int, hidden: bool) -> None:
        llama = self._llama
        llama._ctx.kv_cache_seq_rm(-1, keep, -1)
        for start, end in zip(starts, [*starts[1:], len(tokens)], strict=True):
            if start < keep:
                continue
            embed = hidden and end == len(tokens)
            self._set_embeddings(embed)
            llama._batch.reset()
            # embedding mode makes every token an output (llama.cpp would override anyway); else the last
            llama._batch.set_batch(batch=tokens[start:end], n_past=start, logits_all=embed)
            llama._ctx.decode(llama._batch)

    def _set_embeddings(self, on: bool) -> None:
        import llama_cpp

        if on != self._embeddings:
            llama_cpp.llama_set_embeddings(self._llama._ctx.ctx, on)
            self._embeddings = on

    def _read(self, hidden: bool) -> np.ndarray:
        import llama_cpp

        ctx, llama = self._llama._ctx.ctx, self._llama
        if hidden:
            return np.ctypeslib.as_array(llama_cpp.llama_get_embeddings_ith(ctx, -1), shape=(llama.n_embd(),)).copy()
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(llama.n_vocab(),)).copy()
