"""The index types an index version is built from and loaded with, on the Registry.

An index version has a dense part (``ann.kind`` in its content: ``brute`` or ``scann``) and a
lexical part (``lexical``: ``bm25``). Each kind is an :class:`IndexType` under that name in
:data:`indexes`, so a plugin adds one through the ``cellops.indexes`` entry-point group and an
index recorded with its kind loads through it. ``data`` is the part's input: the vectors for a
dense type (build and load), the chunk texts (build) or the chunk count (load) for a lexical one.
A lexical build is also given ``tokenizer=`` (a ``lexical.Tokenizer``: the one ``build(stem=)``
chose), which it must record so its searches cut queries the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..registry import Registry
from . import ann, lexical

LEXICAL = "bm25"  # the lexical type every build uses (a version without "lexical" in its content has it)


@dataclass(frozen=True)
class IndexType:
    part: str  # "dense" | "lexical": which slot of an index version it fills
    # writes into the (not yet existing) folder; a dense type may return the config to store
    # instead of the one given (ann.build does when cfg.target_recall asks it to tune)
    build: Callable[..., ann.AnnConfig | None]  # (data, folder, cfg[, tokenizer=]) -> ...
    load: Callable[[Any, Path, ann.AnnConfig], Any]  # dense: .search(queries, k); lexical: BM25Index-like


indexes: Registry[IndexType] = Registry("index type", "indexes")
indexes.register("brute", IndexType("dense", lambda v, folder, cfg: ann.build(v, cfg, folder),
                                    lambda v, folder, cfg: ann.DenseIndex(v, cfg)))
indexes.register("scann", IndexType("dense", lambda v, folder, cfg: ann.build(v, cfg, folder),
                                    lambda v, folder, cfg: ann.DenseIndex.load(v, cfg, folder)))
indexes.register("bm25", IndexType("lexical",
                                   lambda texts, folder, cfg, tokenizer=None: lexical.build(texts, folder, tokenizer),
                                   lambda n, folder, cfg: lexical.BM25Index(folder, n)))


def index_type(name: str, part: str) -> IndexType:
    """The registered type ``name``, checked to fill ``part`` (a lexical type cannot be dense)."""
    t = indexes.get(name)
    if t.part != part:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"index type '{name}' is a {t.part} index, not a {part} one")
    return t
