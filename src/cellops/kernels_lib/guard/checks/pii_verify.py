"""A stronger model reads each name the NER pass found, and only the names it agrees on stay
(the pii check's ``verify_names``).

spaCy's small model and the first-name lists take some capitalised words for names: titles
("Guilty Pleasures"), dishes, company names shaped like a person's, common words that open a
line ("Discipline"). Asked per candidate "In this text, is "X" the name of a person?", qwen-1.5b's
P(yes) separates real names from those with AUC 0.94 on the develop side (dev half a and written
sets 1, 2, 4: 113 candidate names, 8 of them false) and 0.94 on the held-back side (dev half b
and written set 3: 58, 12 false); qwen-0.5b reaches 0.76. A name under ``P_KEEP`` is dropped.
Places and addresses are not verified: their false spans there are mostly labelling
conventions (a country inside an address, a postcode as its own part), which a reader of the
text cannot tell apart, and the model's AUC on them was 0.74-0.85.

Cost: one prompt evaluation per candidate name (about 0.9 s with qwen-1.5b on 2 cores; the names
of one text share its start in the KV cache), so it is off by default: for redacting a dataset
or a log, not for every chat turn.
"""

from __future__ import annotations

import functools
from typing import Any

from ...errors import InvalidInputError

P_KEEP = 0.5  # a candidate name stays at P(yes) >= this
WINDOW = 600  # characters of text on each side of a candidate that the model reads
CACHED = 4096  # answers kept per check (a streamed answer is checked again as it grows)
SYSTEM = "You find personal data in text. Answer yes or no."
QUESTION = 'Text:\n"""\n{text}\n"""\n\nIn this text, is "{span}" the name of a person? Answer yes or no.'


class NameVerifier:
    """The model that verifies names, with its answers cached by the question (LRU, ``CACHED``)."""

    def __init__(self, uri: str | None, ws: Any) -> None:
        """``uri``, else the judge model: a local llama.cpp model, which gives P(yes) without generating."""
        from ...models import get_llm
        from ...models.tasks import model_for

        self.model = model_for("judge", uri)
        self.llm = get_llm(self.model, ws)
        if not hasattr(self.llm, "p_yes"):
            raise InvalidInputError(f"pii: verify_names needs a local llama.cpp model (it reads P(yes)); "
                                    f"'{self.model}' is not one: set verify_model, e.g. qwen-1.5b")
        self._answer = functools.lru_cache(maxsize=CACHED)(self._keeps)

    def keep(self, text: str, hits: list[tuple[int, int, str, float]]) -> tuple[list[tuple[int, int, str, float]], int]:
        """``hits`` without the PERSON spans the model does not read as names, and how many it dropped."""
        kept = [h for h in hits if h[2] != "PERSON" or self._answer(question(text, h[0], h[1]))]
        return kept, len(hits) - len(kept)

    def _keeps(self, q: str) -> bool:
        return self.llm.p_yes(_chat(q)) >= P_KEEP


def question(text: str, start: int, end: int) -> str:
    """The question about ``text[start:end]``, with up to WINDOW characters of text on each side."""
    a, b = max(0, start - WINDOW), min(len(text), end + WINDOW)
    return QUESTION.format(text=text[a:b], span=text[start:end])


def _chat(q: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]


def messages(text: str, start: int, end: int) -> list[dict[str, str]]:
    """The chat that asks the model about ``text[start:end]``."""
    return _chat(question(text, start, end))
