"""The pii check with NER (presidio's spaCy engine on the packaged en_core_web_sm + patterns)."""

from __future__ import annotations

import pytest

from cellops.kernels_lib import guard
from cellops.kernels_lib.guard.checks import pii_ner

NER_POLICY = "input:\n  - check: pii\n    action: redact\n    ner: true\n"


@pytest.fixture(scope="module")
def ner_engine():
    """The engine, built with spaCy's downloader made to fail: it must never be reached."""
    import spacy.cli

    original = spacy.cli.download

    def no_download(*args, **kwargs):
        raise AssertionError(f"spaCy tried to download {args}")

    spacy.cli.download = no_download
    try:
        return pii_ner.engine()
    finally:
        spacy.cli.download = original


def test_names_places_and_addresses_get_placeholders_and_come_back(ner_engine, workspace) -> None:
    pol = guard.load(NER_POLICY, workspace)
    text = ("Hi, my name is Maria Gonzalez. Please send the card to 42 Elm Street, Apt. 7, Denver, "
            "and tell Mr. Okafor in Lyon; Maria Gonzalez will sign on 2024-03-05.")
    rep = pol.check_input(text)
    labels = {s.label for f in rep.findings for s in f.spans}
    assert {"PERSON", "ADDRESS", "LOCATION", "DATE_TIME"} <= labels, labels
    assert "Maria" not in rep.text and "Elm Street" not in rep.text and "Okafor" not in rep.text
    assert "Lyon" not in rep.text and "Denver" not in rep.text
    assert rep.text.count("<PERSON_1>") == 2  # the same name, the same placeholder
    assert "<ADDRESS_1>, and tell" in rep.text  # street, flat and city: one address
    assert rep.restore(rep.text) == text


def test_default_policy_keeps_the_pattern_pass_and_strict_turns_ner_on(ner_engine, workspace) -> None:
    text = "Please ask Dr. Lindqvist at 9 Harbour Road about it."
    default = guard.load("default", workspace).check_input(text)
    assert default.text == text  # no names or streets in the default pattern pass
    strict = guard.load("strict", workspace).check_input(text)
    assert "Lindqvist" not in strict.text and "Harbour Road" not in strict.text


def test_plain_text_without_pii_is_left_alone(ner_engine, workspace) -> None:
    rep = guard.load(NER_POLICY, workspace).check_input("3... 2... 1... liftoff! The launch went well.")
    assert rep.text == "3... 2... 1... liftoff! The launch went well." and not rep.placeholders


def test_structured_types_keep_their_f1_with_ner_on(ner_engine, workspace, shared_data) -> None:
    from cellops.kernels_lib.guard.evaluation import evaluate

    res = evaluate(NER_POLICY, shared_data / "pii" / "presidio_generated_small.jsonl", workspace=workspace, log=False)
    assert res.metrics["structured_f1"] >= 0.95
    per = {r["label"]: r for r in res.per_label}
    assert per["PERSON"]["recall"] > 0.6 and per["ADDRESS"]["recall"] > 0.5  # dev figures: 0.76, 0.74


@pytest.mark.parametrize(("text", "expected", "absent"), [
    # a building number before the street line is an address part of its own; the postcode after it
    ("ship it to 48 107 Rue Lafayette\nApt. 5\nLyon 69003", {("ADDRESS", "48"), ("ADDRESS", "69003")}, set()),
    # a company word makes an organisation, "work for" too
    ("I work for Geoscape and my wife for Blue Harbor Consulting",
     {("ORGANIZATION", "Geoscape"), ("ORGANIZATION", "Blue Harbor Consulting")}, set()),
    # "sir" and "i'm" start ordinary phrases; a year alone identifies nobody
    ("excuse me, sir bot, i'm moving out in 2001", set(), {"PERSON", "DATE_TIME"}),
    # a name before a verb of residence
    ("Shelby Araujo lives at 87 Jakobi 69, Laane", {("PERSON", "Shelby Araujo"), ("ADDRESS", "87")}, set()),
    # a street line and the place parts after it in running text are one address (USPS suffix, unit,
    # "City, ST ZIP" on the next line); its city is no separate place
    ("Send it to 0814 Ryan Mountain Suite 230\nEast Kevinfort, OR 86133 please",
     {("ADDRESS", "0814 Ryan Mountain Suite 230\nEast Kevinfort, OR 86133")}, {"LOCATION"}),
    ("Deliver to 12 Oak Hill, Springfield, IL 62704. Thanks", {("ADDRESS", "12 Oak Hill, Springfield, IL 62704")},
     {"LOCATION"}),
    ("USNS Miller\nFPO AE 09876", {("ADDRESS", "USNS Miller\nFPO AE 09876")}, set()),
    ("my zip code is 80202", {("ADDRESS", "80202")}, set()),
    # a year is no house number
    ("In 2020 Kevin Park became the coach", set(), {"ADDRESS"}),
    # places after a place cue: a town-name shape, a US state, a lower-case known city
    ("She moved to Lake Jennifer from Ohio, then flew to rotterdam",
     {("LOCATION", "Lake Jennifer"), ("LOCATION", "Ohio"), ("LOCATION", "rotterdam")}, set()),
    ("we flew to Smithberg in March", {("LOCATION", "Smithberg")}, set()),
    # a postcode before its city; "New York" inside an address; "see you" is no lower-case name
    ("Deliver to 8 Rue des Lilas, 75019 Paris, thanks", {("ADDRESS", "8 Rue des Lilas, 75019 Paris")}, {"LOCATION"}),
    ("Dr. Stone will see you at 350 Fifth Avenue, New York, NY 10118",
     {("PERSON", "Stone"), ("ADDRESS", "350 Fifth Avenue, New York, NY 10118")}, {"LOCATION"}),
    ("i will see you at noon", set(), {"PERSON"}),
    # a street name without a number is no address and no place
    ("The best pizza is on Main Street, I think", set(), {"LOCATION", "ADDRESS"}),
    # a place word before a capitalised word is part of a longer name; after "in" a place that is
    # also a first name is the place; a first name that is a place is a name after "by"
    ("The invoice from Boston Scientific was paid in Charlotte, approved by Teresa",
     {("LOCATION", "Charlotte"), ("PERSON", "Teresa")}, {"ADDRESS"}),
    ("Paris Hilton was seen in Paris", {("PERSON", "Paris Hilton"), ("LOCATION", "Paris")}, set()),
    # an all-capitals form is read in Title Case; a form label names the company
    ("FULL NAME: NGUYEN THI LAN\nCITY: HO CHI MINH CITY\nCompany: Morgan Stanley",
     {("PERSON", "NGUYEN THI LAN"), ("LOCATION", "HO CHI MINH CITY"), ("ORGANIZATION", "Morgan Stanley")}, set()),
    # "X & Y" is a company unless a first name follows the "&"; a year range is no date, a time is one
    ("5 years at Johnson & Johnson, 2019-2023; lunch with Amélie & Jonas at 6pm",
     {("ORGANIZATION", "Johnson & Johnson"), ("PERSON", "Jonas"), ("DATE_TIME", "6pm")}, set()),
    # a sign-off after a blank line is no place line of the address before it; "Dear Ms." no name
    ("Please send it to 42 Orchard Lane\nBath BA1 5NR\n\nBest,\nOwen Taggart\nDear Ms. Lindqvist,",
     {("ADDRESS", "42 Orchard Lane"), ("LOCATION", "Bath"), ("PERSON", "Owen Taggart"), ("PERSON", "Lindqvist")},
     {"ORGANIZATION"}),
    # an all-lower-case chat: a first name beside "me and", a known city after "from"; a lower-case address
    ("ok so me and tom flew in from denver, ship to 301 east 69th street, new york, ny 10021",
     {("PERSON", "tom"), ("LOCATION", "denver"), ("ADDRESS", "301 east 69th street, new york, ny 10021")}, set()),
    # multi-line blocks: a unit line and a "City, ST ZIP" or "CITY ST ZIP" line below the street are
    # one address; a "postcode place" line is a place; numbered lists, form labels and headings are none
    ("Ms. Teresa Okonkwo\n1815 Sycamore Street\nApt 4B\nColumbus, OH 43215\n\nDear Ms. Okonkwo,",
     {("PERSON", "Teresa Okonkwo"), ("ADDRESS", "1815 Sycamore Street\nApt 4B\nColumbus, OH 43215")}, {"LOCATION"}),
    ("SHIP TO:\nDARNELL HAYES\n742 EVERGREEN TER\nSPRINGFIELD IL 62704",
     {("ADDRESS", "742 EVERGREEN TER\nSPRINGFIELD IL 62704")}, {"LOCATION", "ORGANIZATION"}),
    ("Sophie Laurent\n12 rue des Carmes\n69002 Lyon\nFrance",
     {("ADDRESS", "12 rue des Carmes"), ("ADDRESS", "69002"), ("LOCATION", "Lyon"), ("LOCATION", "France")}, set()),
    ("Top 3 parks in town\n1 Riverside Park\n2 Mill Pond Park\n3 Cedar Hill Park", set(), {"ADDRESS"}),
    ("Shipping address\nLine 1: 401 Bayshore Boulevard\nLine 2: Apt 12C\nCity: Tampa",
     {("ADDRESS", "401 Bayshore Boulevard"), ("LOCATION", "Tampa")}, {"PERSON"}),
    ("Street: 9 Fernhill Park\nDate of birth: 04/11/1979", {("DATE_TIME", "04/11/1979")}, set()),
    # a street written name-first before a "City, nan POSTCODE" line is one address with it
    ("Deliver it to Tiurkroken 88\nJESSHEIM, nan 2050, please.", {("ADDRESS", "Tiurkroken 88\nJESSHEIM, nan 2050")},
     {"LOCATION"}),
    ("My new address is Rúa de San Pedro 94\nValverde de Valdelacasa, SA 37791",
     {("ADDRESS", "Rúa de San Pedro 94\nValverde de Valdelacasa, SA 37791")}, set()),
    # a known place after "left" is no name; a place that is also a first name after "our" is none;
    # "Hello I" before "moved" is none
    ("We finally left Cork and are now renting a flat in Galway", {("LOCATION", "Cork"), ("LOCATION", "Galway")},
     {"PERSON"}),
    ("The router at our Charlotte branch needs replacing. Hello I moved to 9 Elm Street", set(), {"PERSON"}),
])
def test_ner_rules_read_the_wording_around_entities(ner_engine, text, expected, absent) -> None:
    from cellops.kernels_lib.guard.checks import pii

    found = {(ent, text[s:e]) for s, e, ent, _ in pii.detect(text, list(pii_ner.NER_ENTITIES), 0.4)}
    assert expected <= found, found
    assert not {ent for ent, _ in found} & absent, found


def test_eval_reads_presidio_research_labels_and_an_address_is_one_span(ner_engine, workspace) -> None:
    from cellops.kernels_lib.guard.evaluation import evaluate

    text = "Ship it to 12 Oak Hill, Springfield, IL 62704 for Colleen Wiley, who moved there from Ohio."
    gold = [("12 Oak Hill, Springfield, IL 62704", "STREET_ADDRESS"), ("Colleen Wiley", "PERSON"), ("Ohio", "GPE")]
    spans = [{"start": text.index(v), "end": text.index(v) + len(v), "type": t} for v, t in gold]
    res = evaluate(NER_POLICY, [{"text": text, "spans": spans}], workspace=workspace, log=False)
    per = {r["label"]: (r["precision"], r["recall"]) for r in res.per_label}
    # the whole address is one prediction (its city is no extra LOCATION), the state after "from" a place
    assert per["ADDRESS"] == (1.0, 1.0) and per["LOCATION"] == (1.0, 1.0) and per["PERSON"] == (1.0, 1.0), per


def test_overlaps_are_settled_by_the_findings_marks_not_their_scores() -> None:
    from cellops.kernels_lib.guard.checks.pii_spans import ORG_CUED, PLACE_CUED, SPACY, Found

    name = Found(3, 12, "PERSON", 0.85, SPACY)
    for score in (0.81, 0.5, 0.95):  # the place's confidence does not decide: its cue does
        assert pii_ner._relabel([name, Found(3, 12, "LOCATION", score, PLACE_CUED)]) == \
            [Found(3, 12, "LOCATION", score, PLACE_CUED)]
        assert pii_ner._relabel([name, Found(3, 12, "LOCATION", score)]) == [name]  # no cue: the name stands
        assert pii_ner._relabel([name, Found(3, 12, "ORGANIZATION", score, ORG_CUED)]) == \
            [Found(3, 12, "ORGANIZATION", score, ORG_CUED)]  # "Company: Morgan Stanley"
    spacy_org = Found(0, 6, "ORGANIZATION", 0.85, SPACY)  # an address block's place line beats spaCy's ORG
    assert pii_ner._relabel([spacy_org, Found(0, 6, "LOCATION", 0.5)]) == [Found(0, 6, "LOCATION", 0.5)]
    rule_org = Found(0, 6, "ORGANIZATION", 0.85)
    assert pii_ner._relabel([rule_org, Found(0, 6, "LOCATION", 0.5)]) == [rule_org, Found(0, 6, "LOCATION", 0.5)]


def test_verify_names_keeps_the_names_the_model_reads_as_names(ner_engine, workspace, monkeypatch) -> None:
    """verify_names: each PERSON span goes to the model as a yes/no question; a span under P(yes)
    0.5 is no finding, other types are never asked about, and an answer is asked for once."""
    from cellops.kernels_lib.guard.checks import pii, pii_verify
    from cellops.kernels_lib.guard.embed import TextCtx
    from cellops.kernels_lib.models import get_llm

    pol = guard.load(NER_POLICY + "    verify_names: true\n    verify_model: default\n", workspace)
    [(_, check)] = pol.rails["input"]
    text = "Ask Maria Gonzalez at 42 Elm Street, Denver, or Dr. Okafor, about Guilty Pleasures."
    found = pii.detect(text, check.opts["entities"], check.threshold)
    names = [f for f in found if f[2] == "PERSON"]
    assert names and len(names) < len(found)
    llm = get_llm("default", workspace)
    keep = {text[s:e]: llm.p_yes(pii_verify.messages(text, s, e)) >= pii_verify.P_KEEP for s, e, _, _ in names}
    asked: list[str] = []
    real = llm.p_yes
    monkeypatch.setattr(llm, "p_yes", lambda m, **kw: (asked.append(m[1]["content"]), real(m, **kw))[1])
    v = check.run(TextCtx(text, "input"))
    got = {text[s.start:s.end] for s in v.spans if s.label == "PERSON"}
    assert got == {n for n, k in keep.items() if k}
    assert v.detail["names_dropped"] == sum(not k for k in keep.values())
    assert f"default kept {len(got)} of {len(names)} names" in v.reason
    assert len(asked) == len(names) and all("the name of a person" in q for q in asked)
    assert {s.label for s in v.spans} - {"PERSON"} == {f[2] for f in found} - {"PERSON"}  # the rest untouched
    check.run(TextCtx(text, "input"))
    assert len(asked) == len(names)  # answers are cached: a streamed answer re-checked costs nothing


def test_verify_names_needs_person_spans_and_a_local_model(workspace) -> None:
    from cellops.kernels_lib.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="verify_names checks PERSON"):
        guard.load("input:\n  - check: pii\n    verify_names: true\n", workspace)
    with pytest.raises(InvalidInputError, match="needs a local llama.cpp model"):
        guard.load(NER_POLICY + "    verify_names: true\n    verify_model: 'openai:http://127.0.0.1:9/v1#m'\n", workspace)
