"""What the pii check's NER rules pass between them: a finding with an explicit mark, and the
word shapes their patterns share.

A later rule must know where some findings came from ("in Charlotte" after a place cue beats a
first name on the same word; an organisation from a form label beats spaCy's name). That is the
finding's ``mark``, never its score: a score only ranks confidence, so retuning one cannot
silently change which rule a finding obeys.
"""

from __future__ import annotations

import re
from typing import NamedTuple

LETTER = r"[^\W\d_]"  # a letter in any script
# a word: letters, with an apostrophe or hyphen inside ("O'Brien", "Sainte-Catherine", "Mary-Kate")
WORD_TAIL = rf"(?:['’-]?{LETTER})*"
WORD = LETTER + WORD_TAIL
FLAGS = re.IGNORECASE | re.UNICODE

# Marks (Found.mark)
SPACY = "spacy"  # an entity of spaCy's model (presidio's engine), not of a pattern
PLACE_CUED = "place_cued"  # a known place after "in", "lives in", "City:": drops a name on the same word
ORG_CUED = "org_cued"  # a company after "Company:", "years at": beats any name or place on its words
ORG_JOINED = "org_joined"  # "X & Y", "Bank of X": beats a weak name or place on its words
PLACE_LINE = "place_line"  # a place line of an address block, before its postcode line: no name


class Found(NamedTuple):
    """One detection: character offsets, our entity type, confidence, and the mark rules read."""

    start: int
    end: int
    entity: str
    score: float
    mark: str = ""
