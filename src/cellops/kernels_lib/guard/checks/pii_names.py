"""Names for the pii check's NER: the 1990 US Census first-name and surname lists (public domain
data, shipped inside the ``names`` package, MIT; read as data files, loaded once per process).

spaCy's small model misses names it has not seen in context ("shouted at Janet", "Megan Payne
fan") and calls others ORG. A known first name in Title Case is a name: with the capitalised word
after it as the surname ("Colleen Wiley"), or alone where it does not open a sentence or is followed
by a comma or "'s". First names that are also ordinary words ("Will", "May", "Grace") or places
("Georgia", "Austin") need the surname. In lower case only a first name + census surname pair
counts ("john smith").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from importlib import resources

from .pii_places import TOWN_START, lower_register, place_cue
from .pii_spans import Found

_FILES = ("dist.male.first", "dist.female.first")
# First names that are also frequent words, months or titles: a name only with a surname after it
_WORDLIKE = frozenset("""will may june april august mark bill art gene ray guy jack frank sue pat rob don
dean earl major king reed wade carol penny sandy rusty bud joy grace hope faith rose ruby pearl dawn crystal
amber jade iris lily daisy holly ivy summer autumn sky river hunter chase precious destiny harmony heaven
star angel baby sunny honey lane dale glen cliff heath forest brook royal prince duke bishop judge miles
price long young white black green brown gray grey lee an in so my ok son sun christian page golden
january february march july september october november december monday tuesday wednesday thursday friday
saturday sunday min max love lovely dear merry sale toy tiny buck major minor low lean""".split())
_WORD = re.compile(r"[^\W\d_]+")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"]\s*|\n\s*|\?{2,}\s*)$")

_PLACE_BEFORE = re.compile(r"(?i)(?:\b(?:the|our|your|their|a|an|this|that)[ \t]+|[^\W\d_]+,[ \t]*)$")
# In an all-lower-case text a first name alone counts beside wording that goes with people
_LOWER_BEFORE = re.compile(r"\b(?:and|with|me and|tell|told|ask|asked|call|text|texted|met|saw|dear|hi|hey|thanks|by)[ \t]+$")
_LOWER_AFTER = re.compile(r"[ \t]+(?:and|said|says|is|was|posted|texted|told|will|has|had|just|wants|thinks)\b|'s\b|,")
_lock = threading.Lock()
_lists: tuple[frozenset[str], frozenset[str]] | None = None


def first_names() -> tuple[frozenset[str], frozenset[str]]:
    """(census first names, census surnames), lower-case, first names without ordinary words."""
    global _lists
    with _lock:
        if _lists is None:
            data = resources.files("names")
            first = {line.split()[0].lower() for f in _FILES
                     for line in (data / f).read_text(encoding="ascii").splitlines() if line.strip()}
            last = {line.split()[0].lower() for line in (data / "dist.all.last").read_text(encoding="ascii").splitlines()
                    if line.strip()}
            from spacy.lang.en.stop_words import STOP_WORDS  # imported with the spaCy model anyway

            # the surnames a lower-case pair may end in: no stop word ("see you" is no name)
            _lists = frozenset(first - _WORDLIKE), frozenset(last - STOP_WORDS - _WORDLIKE)
        return _lists


def _title(word: str) -> bool:
    return bool(word) and word[0].isupper() and (len(word) == 1 or word[1:].islower())


def persons(text: str, not_name: Callable[[str], bool]) -> list[Found]:
    """PERSON spans for known first names in Title Case (plus a capitalised surname after them);
    ``not_name`` vetoes a span that is a place, a street or a company ("Virginia Beach")."""
    known, surnames = first_names()
    lower = lower_register(text)
    words = list(_WORD.finditer(text))
    out: list[Found] = []
    for i, m in enumerate(words):
        w = m.group(0)
        if w.lower() not in known:
            continue
        nxt = words[i + 1] if i + 1 < len(words) else None
        if w.islower():  # "john smith": a lower-case pair of a first name and a census surname
            if nxt and nxt.group(0).islower() and nxt.group(0) in surnames and len(w) > 2 \
                    and re.fullmatch(r"[ \t]+", text[m.end():nxt.start()]):
                out.append(Found(m.start(), nxt.end(), "PERSON", 0.55))
            elif lower and len(w) > 2 and not not_name(w) and (_LOWER_BEFORE.search(text, max(0, m.start() - 12), m.start())
                                                               or _LOWER_AFTER.match(text, m.end())):
                out.append(Found(m.start(), m.end(), "PERSON", 0.5))  # "me and tom are driving" in a chat
            continue
        prev = words[i - 1].group(0) if i else ""
        if not _title(w) or (_title(prev) and prev.lower() in TOWN_START):
            continue  # "Lake Jennifer", "Port Amanda": a town
        if text[m.start() - 1:m.start()] == "-" or text[m.end():m.end() + 1] == "-":
            continue  # "Hubbard-Thomas", "Mary-Kate": part of a longer name or a company
        if nxt and re.fullmatch(r"[ \t]+", text[m.end():nxt.start()]) and _title(nxt.group(0)) \
                and nxt.group(0).lower() not in _WORDLIKE and len(nxt.group(0)) > 1:
            if not not_name(text[m.start():nxt.end()]):
                out.append(Found(m.start(), nxt.end(), "PERSON", 0.6))
            continue
        after = text[m.end():m.end() + 2]
        opens = bool(_SENTENCE_START.search(text, 0, m.start()))
        # a first name that is also a place is a name ("by Teresa") unless a place cue, a determiner
        # or "City, " precedes it ("in Sydney", "the Sydney team", "Nairobi, Kenya")
        before = text[max(0, m.start() - 24):m.start()]
        if (not opens or after[:1] == "," or after in ("'s", "’s")) \
                and not (not_name(w) and (place_cue(before) or _PLACE_BEFORE.search(before))):
            out.append(Found(m.start(), m.end(), "PERSON", 0.5))
    return out
