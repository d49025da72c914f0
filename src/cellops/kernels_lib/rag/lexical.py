"""BM25 (bm25s: sparse scores saved as .npy + JSON, loaded with allow_pickle=False) and
reciprocal-rank fusion for ``--hybrid``.

The tokenizer is part of an index: a query must be cut into terms the way the corpus was.
New builds use English stopwords plus the Snowball English stemmer (PyStemmer), as BEIR's BM25
baseline (Elasticsearch's English analyzer) does, so "studies" matches "study"; on the
passage-level PubMedQA set (benchmarks/bench_rag_modes.py, question queries, report half)
stemming lifted BM25 alone from 0.811 to 0.833 nDCG@10 and weighted fusion from 0.896 to 0.903
(conclusion queries: BM25 0.912 -> 0.919, fusion unchanged at 0.954). The
build writes the tokenizer it used into the BM25 folder (``tokenizer.json``); a folder without
one was built before stemming (PLAIN) and keeps being searched that way until it is rebuilt.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

RRF_K = 60  # the constant from Cormack et al. (2009); robust across corpora
TOKENIZER_FILE = "tokenizer.json"
STOPWORDS = ("en",)  # the bm25s stopword lists a build may name


@dataclass(frozen=True)
class Tokenizer:
    stopwords: str = "en"  # bm25s's stopword list name
    stemmer: str | None = None  # a PyStemmer (Snowball) algorithm name; None: no stemming

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tokenizer:
        """From a folder's tokenizer.json (workspace data: checked, ValueError when unknown)."""
        stopwords, stemmer = d.get("stopwords", "en"), d.get("stemmer") or None
        if stopwords not in STOPWORDS:
            raise ValueError(f"{TOKENIZER_FILE} names stopwords {str(stopwords)[:40]!r}; known: {', '.join(STOPWORDS)}")
        if stemmer is not None:
            import Stemmer

            if stemmer not in Stemmer.algorithms():
                raise ValueError(f"{TOKENIZER_FILE} names an unknown stemmer {str(stemmer)[:40]!r}")
        return cls(stopwords, stemmer)

    def stem_fn(self) -> Callable[[list[str]], list[str]] | None:
        if self.stemmer is None:
            return None
        import Stemmer

        return Stemmer.Stemmer(self.stemmer).stemWords

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        import bm25s

        return bm25s.tokenize(list(texts), stopwords=self.stopwords, stemmer=self.stem_fn(),
                              return_ids=False, show_progress=False)


PLAIN = Tokenizer("en", None)  # every build before stemming (a BM25 folder without tokenizer.json)
DEFAULT = Tokenizer("en", "english")  # what a build uses now


def build(texts: Sequence[str], folder: Path, tokenizer: Tokenizer | None = None) -> None:
    import bm25s

    tok = tokenizer or DEFAULT
    retriever = bm25s.BM25()
    retriever.index(tok(texts), show_progress=False)
    retriever.save(str(folder), show_progress=False)
    (folder / TOKENIZER_FILE).write_text(json.dumps(tok.to_dict()), encoding="utf-8")


def stored_tokenizer(folder: Path) -> Tokenizer:
    """The tokenizer the BM25 part in ``folder`` was built with (PLAIN when it predates the record)."""
    path = folder / TOKENIZER_FILE
    if not path.is_file():
        return PLAIN
    d = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(d, dict):
        raise ValueError(f"{TOKENIZER_FILE} is not a JSON object")
    return Tokenizer.from_dict(d)


class BM25Index:
    def __init__(self, folder: Path, n: int) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.ERROR)
        self.n = n
        self.tokenizer = stored_tokenizer(folder)
        self.retriever = bm25s.BM25.load(str(folder), mmap=False, allow_pickle=False,
                                         show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) per query; documents with score 0 (no shared term) are dropped (-1)."""
        k = min(k, self.n)
        tokens = self.tokenizer(queries)
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
