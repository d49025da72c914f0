"""BM25 (bm25s: sparse scores saved as .npy + JSON, loaded with allow_pickle=False) and
reciprocal-rank fusion for ``--hybrid``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RRF_K = 60  # the constant from Cormack et al. (2009); robust across corpora


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


def build(texts: Sequence[str], folder: Path) -> None:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(_tokenize(texts), show_progress=False)
    retriever.save(str(folder), show_progress=False)


class BM25Index:
    def __init__(self, folder: Path, n: int) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.ERROR)
        self.n = n
        self.retriever = bm25s.BM25.load(str(folder), mmap=False, allow_pickle=False,
                                         show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) per query; documents with score 0 (no shared term) are dropped (-1)."""
        k = min(k, self.n)
        tokens = _tokenize(queries)
        # bm25s rejects queries whose tokens are all unknown; give them an empty result
        vocab = self.retriever.vocab_dict
        ids = np.full((len(queries), k), -1, np.int64)
        scores = np.zeros((len(queries), k), np.float32)
        known = [i for i, t in enumerate(tokens) if any(w in vocab for w in t)]
        if known and k:
            docs, sc = self.retriever.retrieve([tokens[i] for i in known], k=k, show_progress=False,
                                               n_threads=1)
            for row, i in enumerate(known):
                keep = sc[row] > 0
                n = int(keep.sum())
                ids[i, :n], scores[i, :n] = docs[row][keep], sc[row][keep]
        return ids, scores


def rrf(rankings: Sequence[Sequence[int]], k: int) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(d) = sum 1 / (RRF_K + rank); ids < 0 are ignored."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(int(x) for x in ranking):
            if i >= 0:
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
