"""Names, organisations and dates from the wording around them, for the pii check's NER.

spaCy's small model misses lower-case names and names it has not seen in context, and calls half
the names it does see ORG. The wording says more: a title or "my name is" before a name, a name
before "lives" or "'s wife", the first line of a letter's address block; a company word (Inc,
Consulting), "X & Y", "Bank of X", or "Company:" / "years at" before a company; clock times and
numeric dates.
"""

from __future__ import annotations

import re

from .pii_names import first_names
from .pii_places import COUNTRY, lower_register
from .pii_spans import FLAGS, ORG_CUED, ORG_JOINED, WORD, WORD_TAIL, Found

# Titles and wording that announce a name: the name itself may be lower-case or unknown to spaCy.
# "sir", "madam", "i'm", "this is" also start ordinary phrases ("sir bot", "i'm moving"): after
# those a name must be capitalised; after "mr", "my name is", "dear" a lower-case name counts.
_TITLES = r"mr|mrs|ms|miss|mx|dr|prof|sir|madam|madame|mme|mlle|monsieur|herr|frau|señora?|signora?|sgt|capt|lt|col|gen|rev|fr"
_TITLE_NAME = re.compile(rf"\b({_TITLES})\.?[ \t]+({WORD}(?:[ \t]+{WORD})?)", FLAGS)
_NAMED = re.compile(rf"(?i)\b(my name is|name is|named|name:|i am|i'm|this is|it's|call me|signed|regards,|"
                    rf"sincerely,|dear|hi|hello|contact|ask for|attn:?|customer|patient|client|"
                    rf"(?:forwarded|sent|written|submitted|reported|approved|signed) by:|"
                    rf"(?:contact|applicant|employee|patient|customer|client|tenant|guest|passenger|student|"
                    rf"recipient|sender|cardholder|card holder|account holder|beneficiary|witness|attendee):)[ \t]+"
                    rf"({WORD}(?:[ \t]+{WORD})?)")
_WEAK_CUES = frozenset(("sir", "madam", "i am", "i'm", "this is", "it's", "customer", "patient", "client", "contact",
                        "signed"))
_TITLE_WORD = re.compile(rf"(?i)(?:{_TITLES})\.?$")
# A name before a possessive of kin ("Sumaya's kid"), or addressed at the start ("Marisca, can I ...")
_KIN = re.compile(rf"(?<![\w.-])((?-i:[A-ZÀ-Ý]){WORD_TAIL})['’]s[ \t]+(?:kid|kids|son|daughter|wife|husband|"
                  r"mom|mum|mother|dad|father|brother|sister|friend|boyfriend|girlfriend|partner|fianc[ée]e?|"
                  r"uncle|aunt|cousin|grandma|grandpa|grandmother|grandfather|baby|children|parents|family)\b")
_VOCATIVE = re.compile(rf"^[ \t]*((?-i:[A-ZÀ-Ý]){WORD_TAIL}),[ \t]+(?:can|could|would|will|do|did|are|is|have|"
                       r"please|thanks|thank|i|you|we|it's|i'm|how|what|where|when|why)\b", re.I)
# A capitalised name right before a verb of residence or work: "Shelby Araujo lives at ..."
_NAME_VERB = re.compile(rf"(?<![\w.])((?:[A-ZÀ-Ý]{WORD_TAIL}[ \t]){{1,3}})(?:lives|lived|resides|works|worked|"
                        rf"moved|was born|is living)\b")
# Organisations by their legal or trade word, and after "work for", "employed by"
ORG_WORDS = (r"inc|ltd|llc|plc|gmbh|corp|corporation|company|co|group|bank|university|college|foundation|"
             r"association|institute|partners|holdings|solutions|services|systems|technologies|software|"
             r"consulting|labs|agency|industries|enterprises|society|council|hospital|clinic|airlines|"
             r"insurance|motors|media|studios|capital|ventures|analytics|pharmaceuticals|logistics|"
             # Romance-language trade words and legal forms
             r"consultores|asociados|abogados|ingenieros|sarl|srl|ltda|bv")
ORG_WORD = re.compile(rf"(?i)\b(?:{ORG_WORDS})\b\.?")
# "Johnson & Johnson", "Procter & Gamble"; "Bank of America", "Ministry of Health" (not "University
# of X": the dev set labels the place in it)
_ORG_AMP = re.compile(r"\b[A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*)?[ \t]*&[ \t]*[A-Z][\w'-]*\b")
_ORG_OF = re.compile(r"\b(?:Bank|Ministry|Department|Federal Reserve Bank)[ \t]+of[ \t]+(?:the[ \t]+)?[A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*)?")
_ORG_NAME = re.compile(rf"\b(?:[A-Z][\w&'-]*[ \t]+){{1,4}}(?i:{ORG_WORDS})\b\.?")
# after "years at" in a CV, "Company:" in a form: a company, even one named like a person (Morgan Stanley)
_ORG_CONTEXT = re.compile(rf"(?i)\b(?:work(?:s|ed|ing)? (?:for|at)|employed (?:by|at)|employer:?|company:?|"
                          rf"(?:years?|months?|intern(?:ship)?|job|position|role|career|developer|engineer|analyst|"
                          rf"manager|consultant|director|colleague|partner) at)[ \t]+"
                          rf"((?-i:[A-Z]){WORD_TAIL}(?:[ \t]+(?-i:[A-Z]){WORD_TAIL}){{0,2}})")
# Words a name cue may be followed by that are no name ("i am not sure", "dear all")
NOT_NAME = frozenset("""a an the i me my you your he she it we they them this that there here not just also
so very really sure glad happy sorry going trying looking calling writing sending wondering interested
ready able unable new from at in on to for of and or with about please thanks thank yes no ok okay
sir madam team all everyone customer service support back later now today tomorrow again soon
will would can could should shall might must is was has had does did said says told""".split())
# Numeric dates and clock times
DATE = re.compile(r"\b(?:\d{4}-\d{2}-\d{2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|"
                  r"\d{1,2}:\d{2}(?::\d{2})?\s?(?:am|pm)?|\d{1,2}[ \t]?(?:am|pm|a\.m\.|p\.m\.)|noon|midnight)(?![\w-])",
                  re.IGNORECASE)
# A first line ending in one of these is a heading, no name: "Shipping address", "PATIENT INTAKE"
_DOC_WORDS = frozenset("""address addresses location details information info summary notes note intake form report
agenda minutes invoice receipt statement order confirmation application registration label list schedule record
records memo request update overview checklist itinerary instructions recipe contact contacts""".split())
# Words of a department or desk, no person: "Attn: Receiving Dept."
_DESK_WORDS = frozenset("dept dept. department desk office team division".split())
# Particles inside a name that are not capitalised: "Pieter de Vries", "Ludwig van Beethoven"
_PARTICLES = frozenset("de da di du del della der den van von la le al el bin ibn dos das y".split())
# Document titles on a first line, no name: "CURRICULUM VITAE"
_HEADERS = frozenset(("curriculum vitae", "resume", "résumé", "cover letter", "invoice", "tax invoice", "receipt",
                      "purchase order", "order confirmation", "shipping label", "packing slip", "delivery note",
                      "statement", "bank statement", "meeting notes", "to whom it may concern"))


def cued_persons(text: str) -> list[Found]:
    """PERSON spans that a title, a name cue, a verb of residence, kin or a letter's first line announces."""
    lower = lower_register(text)  # in an all-lower-case chat "it's kofi" names someone
    out = []
    for rx, score in ((_TITLE_NAME, 0.85), (_NAMED, 0.6)):
        for m in rx.finditer(text):
            words = list(re.finditer(r"\S+", m.group(2)))
            while words and words[-1].group(0).lower().strip(".") in NOT_NAME:
                words.pop()
            weak = m.group(1).lower() in _WEAK_CUES
            if lower and weak and words and words[0].group(0) in first_names()[0]:
                weak = False  # "it's kofi" in a lower-case chat: a census first name after a weak cue
            if words and _TITLE_WORD.match(words[0].group(0)):
                continue  # "Dear Ms. Lindqvist": the title rule reads the name after the title
            if any(w.group(0).lower() in _DESK_WORDS or w.group(0).lower() in _DOC_WORDS for w in words):
                continue  # "Attn: Receiving Dept.", "PATIENT INTAKE": a desk or a heading
            if words and words[0].group(0).lower() not in NOT_NAME and (not weak or m.group(2)[0].isupper()):
                out.append(Found(m.start(2), m.start(2) + words[-1].end(), "PERSON", score))
    out += [Found(m.start(1), m.end(1) - 1, "PERSON", 0.6) for m in _NAME_VERB.finditer(text)
            if not any(w.lower() in NOT_NAME for w in m.group(1).split())]  # "Hello I moved"
    out += [Found(m.start(1), m.end(1), "PERSON", 0.6) for rx in (_KIN, _VOCATIVE) for m in rx.finditer(text)
            if m.group(1).lower() not in NOT_NAME and not COUNTRY.fullmatch(m.group(1))]
    first = text.lstrip("\n ?").split("\n", 1)
    if len(first) == 2 and re.fullmatch(rf"{WORD}(?:[ \t]+{WORD}){{1,2}}", first[0].strip()) and \
            re.search(r"\d", first[1]):
        at = text.index(first[0].strip())  # the first line of a letter's address block is the name
        if not COUNTRY.fullmatch(first[0].strip()) and not ORG_WORD.search(first[0]) \
                and first[0].strip().lower() not in _HEADERS and not _heading(first[0].strip(), lower):
            out.append(Found(at, at + len(first[0].strip()), "PERSON", 0.6))
    return out


def _heading(line: str, lower: bool) -> bool:
    """Whether a first line is a heading: it ends in a document word, or (in a text with capitals)
    a word of it is neither capitalised nor a name particle ("Pickup location")."""
    words = line.split()
    return words[-1].lower() in _DOC_WORDS or (not lower and any(
        not w[0].isupper() and w not in _PARTICLES for w in words))


def orgs(text: str) -> list[Found]:
    """ORGANIZATION spans by a company word, "X & Y", "Bank of X", and after "Company:" or "years at"."""
    out = [Found(m.start(), m.end(), "ORGANIZATION", 0.75) for m in _ORG_NAME.finditer(text)]
    first = first_names()[0]
    out += [Found(m.start(), m.end(), "ORGANIZATION", 0.76, ORG_JOINED) for m in _ORG_OF.finditer(text)]
    for m in _ORG_AMP.finditer(text):  # "Amélie & Jonas" are two people, "Johnson & Johnson" one company
        left, right = (part.split() for part in m.group(0).split("&", 1))
        if right[0].lower() not in first or left[-1] == right[0]:
            out.append(Found(m.start(), m.end(), "ORGANIZATION", 0.76, ORG_JOINED))
    return out + [Found(m.start(1), m.end(1), "ORGANIZATION", 0.62, ORG_CUED) for m in _ORG_CONTEXT.finditer(text)]


def dates(text: str) -> list[Found]:
    """Numeric dates and clock times (spaCy finds the written-out ones)."""
    return [Found(m.start(), m.end(), "DATE_TIME", 0.75) for m in DATE.finditer(text)]


