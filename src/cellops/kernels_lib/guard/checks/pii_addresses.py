"""Street addresses for the pii check's NER: street lines in many formats, units, postcodes, US
military addresses, and the place parts that follow a street.

spaCy's small model finds almost no street lines ("8 wressle road", "Nassaustraat 123") and no
flat numbers or postcodes, so they are patterns: house number + street word (English, USPS
suffixes, Dutch/German/Nordic suffixes, Romance prefixes), unit words (apt, suite), "zip code"
before a postcode. A street line and the place parts after it in running text ("12 Oak Hill,
Springfield, IL 62704") are one ADDRESS span; a letter's address block (one part per line) stays
in its parts: a name + number line, the place lines and the postcode after its street line.
"""

from __future__ import annotations

import re

from .pii_cues import DATE, NOT_NAME
from .pii_places import COUNTRY, is_known_place, is_state_code, lower_register
from .pii_spans import FLAGS, LETTER, PLACE_LINE, WORD, Found

STREET_WORDS = (r"street|st|road|rd|avenue|ave|drive|dr|lane|ln|boulevard|blvd|way|court|ct|place|pl|"
                 r"square|sq|terrace|ter|highway|hwy|parkway|pkwy|circle|cir|crescent|close|row|walk|alley|gardens|trl|xing")
_STREET_SUFFIX = r"straat|strasse|straße|gasse|weg|laan|gracht|plein|gatan|gata|gade|vej|veien|vegen|katu|utca|ulica|útja|allee|platz"
_STREET_PREFIX = (r"rue|via|viale|calle|avenida|av\.|rua|plaza|piazza|chemin|ul\.|ulica|travessa|largo|strada|carrer|"
                  r"paseo|camino|calzada|carretera|rambla|passeig|avinguda|corso|πλατεία|οδός")
_UNIT_WORDS = r"apt|apartment|suite|ste|unit|flat|floor|room|level|dock|bldg|building"
# rooms, floors and buildings are no address alone (apartments and suites are)
_WEAK_UNIT = re.compile(r"(?i)(?:floor|room|level|dock|bldg|building)\b")
# a compass point after the street word: "55 Queen Street West", "12 Main St NW"
_DIRECTION = r"(?:[ \t]+(?-i:North|South|East|West|[NSEW]|NE|NW|SE|SW)\b)?"
# A street line stays on its line ("Chapter 12\nThe Long Road" is none).
ADDRESS_PATTERNS: list[tuple[re.Pattern[str], float]] = [
    # 12 Main Street / 1755 Nelson Mandela Drive / 230 Wit Rd / 301 East 69th Street
    (re.compile(rf"\b\d{{1,5}}[a-z]?[ \t]+(?:(?:{WORD}|\d{{1,3}}(?:st|nd|rd|th))[ \t]+){{0,4}}(?:{STREET_WORDS})\b\.?{_DIRECTION}",
                FLAGS), 0.75),
    # Nassaustraat 123, Ziegelgasse 26 (and a house number before it)
    (re.compile(rf"\b(?:\d{{1,5}}[ \t]+)?{LETTER}*(?:{_STREET_SUFFIX})\b\.?(?:[ \t]+\d{{1,5}}[a-z]?)?", FLAGS), 0.7),
    # 107 Rue Abdelaziz Thâalbi, via Roma 12
    (re.compile(rf"\b(?:\d{{1,5}}[ \t]+)?(?:{_STREET_PREFIX})[ \t]+(?:{WORD}[ \t]?){{1,4}}(?:\d{{1,5}})?", FLAGS), 0.7),
    # Apt. 018, Suite 771, unit 4b
    (re.compile(rf"\b(?:{_UNIT_WORDS}|p\.?o\.? box)\.?[ \t]*#?[ \t]*\d{{1,5}}[a-z]?\b", FLAGS), 0.75),
]
# USPS street suffixes beyond the common ones (Publication 28): Title Case only, since most are
# ordinary words ("3 kids in the park"): "0814 Ryan Mountain", "12 Oak Hill", "77 Lee Crossing"
USPS_SUFFIXES = ("Bend|Bluffs?|Branch|Bridge|Brooks?|Bypass|Camp|Canyon|Cape|Causeway|Cent(?:er|re)s?|Cliffs?|"
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
_USPS_STREET = re.compile(rf"\b(\d{{1,5}})[A-Za-z]?[ \t]+(?:[A-Z][\w'.-]*[ \t]+){{1,3}}(?:{USPS_SUFFIXES})\b")
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
# A unit on the street's line or alone on the next ("1815 Sycamore Street\nApt 4B\nColumbus, OH ..."),
# or an ordinal floor ("600 Fifth Avenue, 22nd Floor").
_UNIT_AFTER = re.compile(rf"(?:[ \t]*,?[ \t]*|[ \t]*\n[ \t]*)(?:(?:{_UNIT_WORDS}|#)\.?[ \t]*#?[ \t]*\d{{1,5}}[a-z]?\b|"
                         rf"\d{{1,3}}(?:st|nd|rd|th)[ \t]+floor\b)", re.I)
_TAIL_SEP = re.compile(r"[ \t]*,[ \t]*|[ \t]*\n[ \t]*(?=[^\n]*,|[AFD]PO\b)")
# Postcodes: Brazilian, Portuguese, Polish, US ZIP(+4), 4 digits (+ Dutch letters), UK, Canadian
POSTCODE = (r"\d{5}-\d{3}|\d{4}-\d{3}|\d{2}-\d{3}|\d{5}(?:-\d{4})?|\d{4}(?:[ \t]?[A-Z]{2}\b)?|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}|"
            r"[A-Z]\d[A-Z][ \t]?\d[A-Z]\d")
# The line below a street that a US, Canadian or Australian address ends in, without a comma:
# "SPRINGFIELD IL 62704", "Sydney NSW 2000", "madison wi 53703" (the code must be a state's)
_STATE_LINE = re.compile(r"[ \t]*\n[ \t]*(?=(?:[^\W\d_][\w'.-]*[ \t]+){1,3}([A-Za-z]{2,3})[ \t]+"
                         r"(?:\d{4,5}(?:-\d{4})?|[A-Za-z]\d[A-Za-z][ \t]?\d[A-Za-z]\d)[ \t]*(?:$|\n))")
_TAIL_WORD = re.compile(rf"[ \t]*({WORD})(?!\d)")  # "OX4 1HP" is a postcode, not the word "OX"
# after a city in the tail also Nordic/Czech "814 88" and Icelandic "451"
_TAIL_POST = re.compile(rf"[ \t]*(?:{POSTCODE}|\d{{3}}[ \t]\d{{2}}|\d{{3}})(?![\w-])")
# A street written name-first or number-first that ends its line, the next line being "City, ST
# POSTCODE" or "City, nan POSTCODE" (a region left out): "Tiurkroken 88\nJESSHEIM, nan 2050",
# "34 Place Charles de Gaulle\nVILLENEUVE-D'ASCQ, NP 59650"; no wording of the sentence around it
_STREET_TOKEN = (r"(?!(?i:to|it|is|at|in|on|of|for|with|and|or|a|an|the|my|our|your|we|i|me|you|here|"
                 r"please|deliver|send|ship|mail|moved|new|address|card|thanks)\b)[^\W\d_][\w'.’-]*")
_STREET_BEFORE_CITY = re.compile(
    rf"(?:(?<=\n)|^|(?<=[:;]\s)|(?<=\bto\s)|(?<=\bis\s)|(?<=\bat\s)|(?<=\bin\s)|(?<=\bwith\s))[ \t]*"
    rf"((?:\d{{1,5}}[a-z]?[ \t]+)?{_STREET_TOKEN}(?:[ \t]+{_STREET_TOKEN}){{0,4}}(?:[ \t]+\d{{1,5}}[a-z]?\.?)?)"
    rf"(?=[ \t]*\n[ \t]*[^\n,]{{1,60}},[ \t]*(?:[A-Za-z]{{2,3}}|nan)[ \t]+\d)")
# Lower-case words inside place names: "Formentera del Segura", "Sankt Kathrein am Offenegg"
_PLACE_PARTICLES = frozenset("de del della di da do dos das la las los le les sur en nad na pod u am an im bei ob".split())
_CLAUSE_WORDS = frozenset("i and or but so then the a an we you he she it they my your our please thanks".split())
_ZIP_CUE = re.compile(r"(?i)\b(?:zip(?:[ \t]?code)?|post(?:al)?[ \t]?code|postcode)\b(?:\W|is){0,12}$")
# Word(s) + number at the start of an address line: "Jakobi 69", "Školní 939" (a street before the
# first street line, a place + postcode after it), after an optional building number ("87 Jakobi 69")
_NAME_NUMBER = re.compile(rf"(?:(?<=\n)|(?<=^)|(?<=[,:;]\s)|(?<=\bat\s))[ \t?]*(?:\d{{1,5}}[ \t]+)?"
                          rf"({WORD}(?:[ \t]{WORD}){{0,3}})[ \t](\d{{1,5}}[a-z]?)\b\.?(?=[ \t]*(?:$|\n|,))", FLAGS)
# Words a number follows that are no street: "Invoice 2291", "Windows 11", "Step 3"
_NOT_STREET = frozenset("""invoice order ticket case ref reference account item no number version page chapter
step windows flight gate seat table line row id room code pin batch lot model part serial build release
level grade class year week day vol volume issue""".split())
# A building or flat number alone before a street line: the "48" of "48 107 Rue ...", "87 Jakobi 69"
_LEAD_NUMBER = re.compile(r"(?<![\w.,/-])(\d{1,5})[ \t]+$")
# The place lines of an address block: 1-3 words alone on a line or between commas
_PLACE_PART = re.compile(rf"(?:(?<=\n)|(?<=,))[ \t?]*({WORD}(?:[ -]{WORD}){{0,2}})[ \t]*(?=$|\n|,|\s\d|[ \t]+(?-i:[A-Z]{{1,2}}\d))", FLAGS)
_BLOCK_END = re.compile(r"(?i)\n[ \t?]*\n(?=[ \t?]*(?:(?:best|regards|kind regards|thanks|thank you|dear|hi|hello|"
                        r"sincerely|cheers|yours|love)\b|[^\n]*?(?:\S+[ \t]+){4}))")
_POSTCODE = re.compile(r"(?<![\w/-])(?:\d{4}-\d{3}|\d{2}-\d{3}|\d{5}(?:-\d{4})?|\d{4}(?: [A-Z]{2}(?![\w-]))?|"
                       r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d)(?![\w-])")
# A block line ending in a postcode: the place lines stop there (only a country may follow)
_POST_LINE_END = re.compile(rf"(?:{_POSTCODE.pattern})[ \t]*(?=\n|$)")
# A "postcode place" line below a street: "69002 Lyon", "1016 DV Amsterdam", "1620 København V"
_POST_PLACE = re.compile(rf"(?:(?<=\n)|^)[ \t?]*(?:{_POSTCODE.pattern})[ \t]+({WORD}(?:[ \t]{WORD}){{0,2}})[ \t]*(?=$|\n|,)")
# A unit before the street line: "Flat 6, 31 Cowley Road", "Level 3, 210 George Street"
_LEAD_UNIT = re.compile(rf"(?i)(?<!\w)(?:{_UNIT_WORDS})\.?[ \t]*#?[ \t]*\d{{1,5}}[a-z]?[ \t]*,[ \t]*$")
# Numbered list lines ("1 Riverside Park\n2 Mill Pond Park"): list numbers, no house numbers
_LIST_LINE = re.compile(r"(?m)^[ \t]*(\d{1,2})[.)]?[ \t]+\S")
_ADDRESS_CONTEXT = re.compile(r"(?i)\b(?:address|addr|zip|postcode|postal code|lives?|living|located|location|street|ship(?:ping)?|"
                              r"deliver(?:y|ed)?|mail(?:ing)?|billing|residence|resides?|moved?|home|visit|"
                              r"office|corner of|near)\b")


def addresses(text: str) -> list[Found]:
    """ADDRESS spans (street lines, units, postcodes, whole addresses in running text) and the
    LOCATION place lines of an address block."""
    listed = _list_numbers(text)
    out = [f for f in _street_lines(text) if f.start not in listed]
    # units are no street, but a PO box is the street line of its address
    streets = [f for f in out if not ADDRESS_PATTERNS[3][0].fullmatch(text, f.start, f.end)
               or re.match(r"(?i)p\.?o\.?", text[f.start:f.end])]
    if not streets and not _ADDRESS_CONTEXT.search(text):  # "Room 4, second floor" on an agenda
        out = [f for f in out if not _WEAK_UNIT.match(text, f.start)]
    in_address = bool(out) or bool(_ADDRESS_CONTEXT.search(text))
    if in_address:  # a house-number line, a postcode or a place line only counts inside an address
        out += _block_parts(text, out, listed)
    out += [Found(m.start(), m.end(), "ADDRESS", 0.6) for m in _POSTCODE.finditer(text)
            if _ZIP_CUE.search(text, max(0, m.start() - 30), m.start())]  # "zip code: 80202"
    out += [Found(m.start(), m.end(), "LOCATION", 0.7) for m in COUNTRY.finditer(text)]
    return out + _address_runs(text, streets)


def _street_lines(text: str) -> list[Found]:
    """Street lines and units by their patterns (street words, USPS suffixes, military, US tails)."""
    out = [Found(m.start(), m.end(), "ADDRESS", s) for rx, s in ADDRESS_PATTERNS for m in rx.finditer(text)]
    out += [Found(m.start(), m.end(), "ADDRESS", 0.75) for m in _USPS_STREET.finditer(text)
            if not (re.fullmatch(r"(?:19|20)\d\d", m.group(1)) and _YEAR_BEFORE.search(text, 0, m.start()))]
    out += [Found(m.start(1), m.end(1), "ADDRESS", 0.6) for m in _STREET_BEFORE_CITY.finditer(text)
            if re.search(r"\d", m.group(1))]
    return out + [Found(m.start(), m.end(), "ADDRESS", 0.75) for rx in (_MILITARY, _US_TAIL_STREET)
                  for m in rx.finditer(text)]


def _list_numbers(text: str) -> set[int]:
    """Offsets of the numbers that open consecutive lines counting up (1, 2, 3): a numbered list."""
    lines = list(_LIST_LINE.finditer(text))
    out: set[int] = set()
    for a, b in zip(lines, lines[1:], strict=False):
        if int(b.group(1)) == int(a.group(1)) + 1:
            out |= {a.start(1), b.start(1)}
    return out


def _block_parts(text: str, found: list[Found], listed: set[int]) -> list[Found]:
    """Inside an address (``found``: its street lines and units so far): name + number street lines,
    place + postcode lines, postcodes after the street, building numbers before it, and the place
    lines of its block."""
    street_at = min((f.start for f in found), default=len(text))  # an address block's places follow its street
    out: list[Found] = []
    for m in _NAME_NUMBER.finditer(text):
        if DATE.fullmatch(m.group(0).strip()) or _ZIP_CUE.search(m.group(1)) \
                or m.group(1).split()[-1].lower() in _NOT_STREET:
            continue  # "zip code is 80202" is a postcode (below), not a street line
        if m.start(1) < street_at and not COUNTRY.fullmatch(m.group(1)):
            out.append(Found(m.start(1), m.end(), "ADDRESS", 0.6))  # the street line
            street_at = m.start(1)
        elif len(m.group(2)) < 3:  # "Kaplice 1", "Praha 4": a place and its district
            out.append(Found(m.start(1), m.end(2), "LOCATION", 0.55, PLACE_LINE))
        elif text[m.start(1) - 2:m.start(1)].strip() != "," or m.group(1)[0].isupper():
            # a place (or country) and its postcode below the street ("code porte 4521" is none)
            out += [Found(m.start(1), m.end(1), "LOCATION", 0.55, PLACE_LINE), Found(m.start(2), m.end(), "ADDRESS", 0.5)]
    # a postcode follows its street ("in 1965" in prose is a year)
    out += [Found(m.start(), m.end(), "ADDRESS", 0.5) for m in _POSTCODE.finditer(text) if m.start() > street_at]
    out += _lead_numbers(text, [f for f in found + out if f.entity == "ADDRESS" and f.start not in listed])
    return out + _place_lines(text, street_at)


def _place_lines(text: str, street_at: int) -> list[Found]:
    """The place lines of a block: after its street line, before a blank line that a greeting, a
    sign-off or a sentence follows ("Best,\nOwen Taggart" is no place line); after the line that
    ends in a postcode only a known place or country ("Bath BA1 5NR\nUnited Kingdom", not "thx")."""
    block_end = blank.start() if (blank := _BLOCK_END.search(text, street_at)) else len(text)
    post = _POST_LINE_END.search(text, street_at + 1, block_end)
    post_end = post.end() if post else block_end
    out = [Found(m.start(1), m.end(1), "LOCATION", 0.5, PLACE_LINE) for m in _POST_PLACE.finditer(text)
           if street_at < m.start() < block_end]
    for m in _PLACE_PART.finditer(text):
        words = m.group(1)
        if not street_at < m.start() < block_end or words.lower() in NOT_NAME \
                or re.match(r"[ \t]*\d*[ \t]*:", text[m.end(1):]):
            continue  # "Line 2: Apt 12C": a form's label
        if text[m.start() - 1] == "," and not all(w[0].isupper() for w in words.split()):
            continue  # between commas a place is capitalised ("12 Elm Street, and I think, ...")
        if m.start() > post_end and not (COUNTRY.fullmatch(words) or is_known_place(words)):
            continue
        out.append(Found(m.start(1), m.end(1), "LOCATION", 0.5, PLACE_LINE if m.start() < post_end else ""))
    return out


def _address_runs(text: str, streets: list[Found]) -> list[Found]:
    """One ADDRESS span for a street line and the place parts after it in running text or a US
    block ("74 106 Kate Edger Place, BINSTED, Vatican City"; "0814 Ryan Mountain Suite 230\nEast
    Kevinfort, OR 86133"), with a unit before it ("Flat 6, 31 Cowley Road"): the parts win over
    the pieces when overlaps are resolved (the longer span)."""
    out = []
    lower = lower_register(text)  # "301 east 69th street, new york, ny 10021"
    for start, end, *_ in streets:
        stop = _tail(text, end, lower)
        unit = _LEAD_UNIT.search(text, max(0, start - 24), start)
        if stop > end or unit:
            lead = _LEAD_NUMBER.search(text, max(0, start - 12), start)
            out.append(Found(unit.start() if unit else lead.start(1) if lead else start, stop, "ADDRESS", 0.75))
    return out


def _tail(text: str, pos: int, lower: bool = False) -> int:
    """End of the unit and place parts after a street line ending at ``pos``; ``pos`` if none."""
    unit = _UNIT_AFTER.match(text, pos)
    base = end = unit.end() if unit else pos
    while sep := _TAIL_SEP.match(text, end) or _state_line(text, end, lower):
        seg = _segment(text, sep.end(), lower)
        if seg == sep.end():
            break
        end = seg
    return end if end > base else pos  # a unit alone stays its own part


def _state_line(text: str, pos: int, lower: bool) -> re.Match[str] | None:
    """The line break before a "City ST ZIP" line whose code is a US state's or a Canadian or
    Australian region's (in capitals, or in a text written all in lower case)."""
    m = _STATE_LINE.match(text, pos)
    return m if m and is_state_code(m.group(1).upper()) and (lower or m.group(1).isupper()) else None


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
    for _ in range(6):
        m = _TAIL_WORD.match(text, end)
        if m and end > pos and m.group(1) in _PLACE_PARTICLES and (nxt := _TAIL_WORD.match(text, m.end())) \
                and nxt.group(1)[0].isupper():
            m = nxt  # "Poveda de las Cintas", "Dvur Králové nad Labem": a particle inside the name
        if not m or not (lower or m.group(1)[0].isupper()) or m.group(1).lower() in _CLAUSE_WORDS:
            break
        end = m.end()
    return end


def _lead_numbers(text: str, streets: list[Found]) -> list[Found]:
    """A building number standing before a street line is an address part of its own."""
    out = []
    for start, *_ in streets:
        m = _LEAD_NUMBER.search(text, max(0, start - 12), start)
        if m and text[start].isalnum():
            out.append(Found(m.start(1), m.end(1), "ADDRESS", 0.6))
    return out


