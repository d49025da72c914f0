"""Text normalisation shared by citation inference and answer evaluation (SQuAD-style)."""

from __future__ import annotations

import re
import string

_STOP = frozenset("""a an the and or but if of to in on at by for with from as is are was were be
been being it its this that these those there here which who whom what when where why how not no
do does did so than then too very can could may might will would shall should i you he she we they
them his her our their your my me us also into over under about after before between through
during without within upon such only other any some each both more most own same just has
have had having""".split())
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKS = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the SQuAD answer normaliser)."""
    text = _MARKS.sub(" ", text.lower())
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def content_words(text: str) -> set[str]:
    return {w for w in tokens(text) if w not in _STOP and len(w) > 1}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(_MARKS.sub("", text)) if s.strip()]
