"""Harmful requests (content policy): a logistic-regression layer over MiniLM embeddings plus
intent-cue features and word n-gram TF-IDF features, trained on the project's own exemplars
(guard/exemplars/harmful.jsonl, benign.jsonl and contrastive.jsonl). The category is the nearest
category by exemplar similarity; a policy can set a threshold per category.

Why cue and n-gram features: MiniLM embeds *topic* far more than *intent*, so "explain how
ransomware is detected" and "write ransomware" land close together. Words that carry intent
(covertly, illegally, convince ... to, defamatory) are added as explicit features, and word 1-2
grams let the classifier learn the rest of the intent wording ("so that I can", "how to protect")
from contrastive.jsonl: same-topic pairs, one harmful and one benign request.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import numpy as np

from ..embed import (
    TextCtx,
    builtin_exemplars,
    cached_logreg,
    exemplar_matrix,
    read_jsonl,
    segments,
    sigmoid,
)
from ..report import Verdict
from .base import Check, Opt, register
from .cascade import OPTIONS as CASCADE_OPTIONS
from .cascade import Cascade, logit

CATEGORIES = ("violence_weapons", "self_harm", "child_sexual", "sexual_content", "hate_harassment",
              "malware_intrusion", "fraud_scams", "dangerous_chem_bio", "disinformation",
              "privacy_violation", "illegal_activity")
_I = re.IGNORECASE
CUES: list[tuple[str, re.Pattern[str]]] = [(n, re.compile(p, _I)) for n, p in [
    ("covert", r"without (?:getting caught|being (?:caught|detected|noticed|traced)|(?:anyone|them|him|her|"
               r"the police|their parents) (?:knowing|noticing|finding out)|(?:their|her|his) (?:consent|"
               r"knowledge|permission))|undetect|untraceable|covert|secretly|\bevad|bypass|circumvent|"
               r"get away with|avoid (?:detection|getting caught|the police)"),
    ("illegal", r"illegal|unlawful|black market|dark ?web|counterfeit|\bforg(?:e|ed|ery|ing)\b|\bfake\b|"
                r"launder|smuggl|traffick|\bbrib|extort|blackmail|ponzi|pyramid scheme|insider trading|"
                r"tax evasion|embezzl"),
    ("cyber", r"hack(?:ing)? into|ransomware|keylogger|malware|spyware|botnet|ddos|trojan|rootkit|"
              r"exploit|phishing|crack (?:the |a |my |their )?(?:password|wifi)|zero-day|brute.?force|"
              r"steal (?:credentials|passwords|data)"),
    ("violence", r"\bkill|murder|assassinat|massacre|slaughter|tortur|\bmaim|behead|\bstab|shooting|"
                 r"\bbomb|explosive|detonat|poison|strangl|kidnap|hostage|terroris|weapon|arson|"
                 r"\bgenocid|\bwar(?:fare)?\b|violen"),
    ("self_harm", r"suicid|kill (?:myself|yourself|themselves)|self[- ]harm|cut(?:ting)? (?:myself|"
                  r"yourself)|starv|anorexi|bulimi|\bpurg|overdos|end (?:my|your|their) (?:own )?life"),
    ("hate", r"racis|sexis|xenophob|homophob|transphob|bigot|inferior|subhuman|vermin|\bslurs?\b|"
             r"hate speech|supremac|dehumaniz|ethnic cleansing|defamat|slander|libel|harass|\bbull(?:y|ies)|"
             r"ridicul|demean|\bmock|humiliat|shaming|disgusting|glorif"),
    ("persuade", r"\b(?:convinc|persuad|encourag|pressur|coerc|manipulat|trick|lure|groom|incit)\w*\b"),
    ("sexual", r"explicit|porn|erotic|sexual|\bnude|naked|\brape|molest|prostitut|sex (?:act|scene|slave)"),
    ("minor", r"\b(?:child(?:ren)?|minors?|kids?|underage|teen(?:ager)?s?|\d{1,2}[- ]year[- ]olds?)\b"),
    ("chem_bio", r"sarin|ricin|anthrax|nerve agent|mustard gas|\bvx\b|chlorine gas|toxin|pathogen|"
                 r"bioweapon|chemical weapon|dirty bomb|uranium|synthes|methamphetamine|\bmeth\b|fentanyl|"
                 r"cocaine|heroin|\blsd\b|mdma|precursor"),
    ("deceive", r"fake news|disinformation|misinformation|propaganda|hoax|conspiracy|fabricat|"
                r"false(?:ly)?|claiming|rigged|\bden(?:y|ies|ying)\b|never happened|mislead|deceiv|"
                r"impersonat|pretend(?:ing)? to be"),
    ("privacy", r"\bdox|stalk|track (?:someone|my|her|his|their)|spy on|home address|personal "
                r"(?:data|information)|hidden camera|secretly record|facial recognition|surveil"),
    ("money_harm", r"gambl|casino|betting|loan shark|\bscam|fraud|\bsteal|theft|\brob\b|shoplift|cheat"),
    ("bad_advice", r"stop taking|instead of (?:chemo|insulin|medication|vaccin|treatment|seeing)|"
                   r"\bcures?\b|recommend\w* .{0,40}(?:heroin|opioid|cocaine|bleach)"),
    ("framing_safe", r"\b(?:history|historical|fictional|novel|story|poem|essay|explain (?:how|why|what)|"
                     r"awareness|prevent|prevention|protect|defend|defen[cs]e|detect|recogni[sz]e|report|"
                     r"safety|safely|legal(?:ly)?|ethic|support|treatment|recover|discuss)"),
]]
CUE_SCALE = 0.5  # cue features next to unit-norm embeddings: comparable per-feature magnitude
# The n-gram block is L2-normalised like the embedding and scaled up so its weights need less L2
# shrinkage; scale, L2 and min-df were chosen by grouped cross-validation on the exemplars only.
NGRAM_SCALE = 2.0
NGRAM_MIN_DF = 2
L2 = 3e-3
# Default threshold: the 95th percentile of benign out-of-fold probabilities in 5-fold grouped
# cross-validation on the exemplars (calibrate() below recomputes it), i.e. a 5% benign FPR on
# the project's own held-out exemplars. Real traffic differs from them: see docs in calibrate().
DEFAULT_THRESHOLD = 0.60
# The cascade's uncertain band (cascade.py), from the same out-of-fold scores (calibrate():
# band_low 0.454 = 5% of harmful exemplars below, band_high 0.711 = 1% of benign above; 28% of the
# exemplars fall inside).
DEFAULT_BAND = (0.45, 0.71)
# ``encoder: tuned`` (tuned_encoder.py): its out-of-fold scores (calibrate(encoder="tuned"), every
# fold fine-tuning its own encoder: AUC 0.986, recall 0.934 at 4.9% benign FPR, against 0.966 /
# 0.807 for the base encoder) put the 5%-benign-FPR cut at TUNED_CUT; its log-odds are shifted so
# that the cut lands on DEFAULT_THRESHOLD, and every threshold (the default, a policy's, per
# category) keeps its meaning. TUNED_BAND is the cascade band from the same scores after the shift
# (raw 0.321-0.948; 11% of the exemplars inside).
TUNED_CUT = 0.535
TUNED_BAND = (0.38, 0.96)
ENCODERS = ("base", "tuned")
_TOK = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def cue_vector(text: str) -> np.ndarray:
    return np.array([CUE_SCALE if rx.search(text) else 0.0 for _, rx in CUES], dtype=np.float32)


def ngrams(text: str) -> set[str]:
    """Lower-cased word unigrams and bigrams (a set: binary term frequency)."""
    w = _TOK.findall(text[:20_000].lower())
    return set(w) | {f"{a} {b}" for a, b in zip(w, w[1:], strict=False)}


class NgramTfidf:
    """Binary-tf x smoothed-idf word n-grams, L2-normalised; numpy only and deterministic, so the
    vocabulary is rebuilt from the exemplars at setup and only the weights need caching."""

    def __init__(self, texts: list[str], min_df: int = NGRAM_MIN_DF) -> None:
        df = Counter(g for t in texts for g in ngrams(t))
        vocab = sorted(g for g, c in df.items() if c >= min_df)
        self.index = {g: i for i, g in enumerate(vocab)}
        n = len(texts)
        self.idf = np.array([math.log((1 + n) / (1 + df[g])) + 1 for g in vocab], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.index)

    def matrix(self, texts: list[str]) -> np.ndarray:
        m = np.zeros((len(texts), len(self.index)), np.float32)
        for i, t in enumerate(texts):
            js = [j for g in ngrams(t) if (j := self.index.get(g)) is not None]
            if js:
                m[i, js] = self.idf[js] * NGRAM_SCALE / float(np.linalg.norm(self.idf[js]))
        return m

    def score(self, text: str, w: np.ndarray) -> float:
        """``matrix([text]) @ w`` without the dense row: a few dozen lookups per text."""
        js = [j for g in ngrams(text) if (j := self.index.get(g)) is not None]
        if not js:
            return 0.0
        v = self.idf[js]
        return float(v @ w[js]) * NGRAM_SCALE / float(np.linalg.norm(v))


def load_exemplars(extra: str | None = None) -> list[dict[str, Any]]:
    """Built-in exemplars (+ a user's file), first occurrence of each text kept."""
    rows = builtin_exemplars("harmful") + builtin_exemplars("benign") + builtin_exemplars("contrastive")
    if extra:
        rows += read_jsonl(extra)
    seen: set[str] = set()
    out = []
    for r in rows:
        key = r["text"].strip().lower()
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def exemplars_sha256() -> str:
    """The hash of the built-in exemplars (texts and labels, in order): what a judge's probe
    (probe.py) was fitted on; a test fails when they change and nobody refitted the probes."""
    import hashlib
    import json

    rows = [[r["text"], r["label"]] for r in load_exemplars()]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def features(texts: list[str], emb: np.ndarray, tfidf: NgramTfidf | None, cues: bool) -> np.ndarray:
    parts = [emb]
    if cues:
        parts.append(np.stack([cue_vector(t) for t in texts]))
    if tfidf is not None:
        parts.append(tfidf.matrix(texts))
    return np.hstack(parts)


def grouped_folds(rows: list[dict[str, Any]], folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each exemplar's fold in grouped k-fold cross-validation: a contrastive pair stays in one fold."""
    groups = [f"p{r['pair']}" if "pair" in r else f"s{i}" for i, r in enumerate(rows)]
    order = np.random.default_rng(seed).permutation(sorted(set(groups)))
    fold_of = {g: i % folds for i, g in enumerate(order)}
    return np.array([fold_of[g] for g in groups])


def oof_scores(folds: int = 5, seed: int = 0, encoder: str = "base") -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """The built-in exemplars, their out-of-fold P(harmful) in grouped k-fold cross-validation of
    the default classifier (a contrastive pair stays in one fold, so a request is never scored
    against its own twin), and their labels (1 harmful, 0 benign). ``encoder="tuned"``: each fold
    also fine-tunes the encoder on its training rows (~2 min per fold on 2 cores), unshifted."""
    from ..embed import train_logreg

    rows = load_exemplars()
    texts = [r["text"] for r in rows]
    y = np.array([0.0 if r["label"] == "benign" else 1.0 for r in rows])
    fold = grouped_folds(rows, folds, seed)
    emb = exemplar_matrix(texts)
    oof = np.zeros(len(rows))
    for k in range(folds):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        tf = NgramTfidf([texts[i] for i in tr])
        if encoder == "tuned":
            from ..tuned_encoder import fine_tune

            st = fine_tune([texts[i] for i in tr], y[tr], progress=f"fold {k + 1} of {folds}")
            emb = st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        w, b = train_logreg(features([texts[i] for i in tr], emb[tr], tf, True), y[tr], l2=L2)
        oof[te] = sigmoid(features([texts[i] for i in te], emb[te], tf, True) @ w + b)
    return rows, oof, y


def calibrate(folds: int = 5, fpr: float = 0.05, seed: int = 0, encoder: str = "base") -> dict[str, float]:
    """Out-of-fold figures of the default classifier on the built-in exemplars (:func:`oof_scores`).

    Returns the out-of-fold AUC, the recall at ``fpr`` benign FPR and the threshold giving that
    FPR, which is how DEFAULT_THRESHOLD was set, and the cascade band. These are in-distribution
    figures: on requests worded unlike the exemplars (e.g. JailbreakBench) the same threshold
    gives a higher FPR.
    """
    from .cascade import calibrate_band

    rows, oof, y = oof_scores(folds, seed, encoder)
    band = calibrate_band(oof, y)
    from ..ranking import auc, fpr_cut

    neg, pos = oof[y == 0], oof[y == 1]
    thr = fpr_cut(neg, fpr)
    out = {"auc": auc(oof, y == 1), "recall_at_fpr": float(np.mean(pos > thr)),
           "threshold": thr, "benign_fpr": float(np.mean(neg > thr)), "exemplars": float(len(rows)),
           "band_low": band[0], "band_high": band[1], "in_band": float(np.mean((oof >= band[0]) & (oof < band[1])))}
    if encoder == "tuned":  # TUNED_CUT is the threshold; TUNED_BAND the band after the shift to DEFAULT_THRESHOLD
        shift = logit(DEFAULT_THRESHOLD) - logit(thr)
        out |= {"band_low_shifted": float(sigmoid(logit(band[0]) + shift)),
                "band_high_shifted": float(sigmoid(logit(band[1]) + shift))}
    return out


@register
class Harmful(Check):
    name = "harmful"
    help = ("harmful requests by category (" + ", ".join(CATEGORIES) + "); threshold = probability at "
            "or above which a request is flagged; 'categories' sets per-category thresholds")
    options = {
        "categories": Opt("float_map", {}, "per-category thresholds, e.g. {self_harm: 0.3}"),
        "exemplars": Opt("str", None, "extra JSONL of {text, label}: label 'benign' or a category name "
                                      "(new names add categories)"),
        "cues": Opt("bool", True, "use the intent-cue features next to the embedding"),
        "ngrams": Opt("bool", True, "use word 1-2 gram TF-IDF features next to the embedding"),
        "encoder": Opt("str", "base", "base: the shared MiniLM embedding; tuned: MiniLM fine-tuned on the "
                       "exemplars (AUC 0.84 -> 0.89 on JailbreakBench dev; trained once per machine, ~3 min; "
                       "one more embedding per text)"),
        **CASCADE_OPTIONS,
    }
    default_threshold = DEFAULT_THRESHOLD
    uses_embedding = True
    stream = "sentence"

    def setup(self) -> None:
        if self.opts["encoder"] not in ENCODERS:
            from ...errors import InvalidInputError

            raise InvalidInputError(f"harmful: option 'encoder' must be one of {', '.join(ENCODERS)}; "
                                    f"got {self.opts['encoder']!r}")
        tuned = self.opts["encoder"] == "tuned"
        # the probes' combinations were fitted on the base classifier's scores: with a tuned one the probe decides alone
        self.cascade = Cascade(self.opts, TUNED_BAND if tuned else DEFAULT_BAND, "harmful", self.ws,
                               with_classifier=not tuned)
        rows = load_exemplars(self.opts["exemplars"])
        self.labels = [str(r["label"]) for r in rows]
        self.cats = sorted({lab for lab in self.labels if lab != "benign"})
        unknown = sorted(set(self.opts["categories"]) - set(self.cats))
        if unknown:
            from ...errors import InvalidInputError

            raise InvalidInputError(f"harmful: unknown category '{unknown[0]}'; valid: {', '.join(self.cats)}")
        texts = [r["text"] for r in rows]
        self.matrix = exemplar_matrix(texts)  # the shared embedding: the category is read from it
        self.encoder = None
        clf_matrix, shift = self.matrix, 0.0
        if tuned:
            from ..tuned_encoder import tuned_embedder

            self.encoder = tuned_embedder(texts, self.labels)
            clf_matrix = exemplar_matrix(texts, self.encoder)
            shift = logit(DEFAULT_THRESHOLD) - logit(TUNED_CUT)
        use_cues = self.opts["cues"]
        self.tfidf = NgramTfidf(texts) if self.opts["ngrams"] else None
        tfidf = self.tfidf

        def build() -> tuple[Any, Any]:
            return (features(texts, clf_matrix, tfidf, use_cues),
                    np.array([0.0 if lab == "benign" else 1.0 for lab in self.labels]))

        w, b = cached_logreg(["harmful", texts, self.labels, use_cues, CUE_SCALE, [p.pattern for _, p in CUES],
                              tfidf is not None, NGRAM_SCALE, NGRAM_MIN_DF, L2,
                              self.encoder.weights_hash if self.encoder else "base"], build, l2=L2)
        self.b = b + shift
        d = clf_matrix.shape[1]
        n_cue = len(CUES) if use_cues else 0
        self.w_emb, self.w_cue, self.w_ngram = w[:d], w[d:d + n_cue], w[d + n_cue:]
        # each category's exemplar rows as one padded index matrix, so that run() reads every
        # category's top-3 similarity in one sort (pad: a row past the end, whose similarity is -inf)
        lab = np.array(self.labels)
        rows_of = [np.flatnonzero(lab == c) for c in self.cats]
        self.cat_index = np.full((len(self.cats), max(len(r) for r in rows_of)), len(lab))
        for k, r in enumerate(rows_of):
            self.cat_index[k, :len(r)] = r
        self.cat_top = np.array([min(3, len(r)) for r in rows_of], dtype=np.float64)

    def probability(self, ctx: TextCtx) -> tuple[float, int]:
        """P(harmful) of the most harmful segment, and that segment's index."""
        if self.encoder is None:
            e = ctx.embeddings
        else:
            key = ("harmful-encoder", self.encoder.weights_hash)
            if key not in ctx.shared:  # the tuned embedding of the text's segments, once per text
                ctx.shared[key] = self.encoder.encode(segments(ctx.text))
            e = ctx.shared[key]
        z = e @ self.w_emb + self.b
        if self.opts["cues"] or self.tfidf is not None:
            segs = segments(ctx.text)[: len(e)]
            for i, s in enumerate(segs):
                if self.opts["cues"]:
                    z[i] += float(self._cues(s, ctx) @ self.w_cue)
                if self.tfidf is not None:
                    z[i] += self.tfidf.score(s, self.w_ngram)
        p = sigmoid(z)
        i = int(np.argmax(p))
        return float(p[i]), i

    @staticmethod
    def _cues(segment: str, ctx: TextCtx) -> np.ndarray:
        """cue_vector of one segment, once per text (run() names the cues of a one-segment text from it)."""
        key = ("harmful-cues", segment)
        if key not in ctx.shared:
            ctx.shared[key] = cue_vector(segment)
        return ctx.shared[key]

    def run(self, ctx: TextCtx) -> Verdict:
        p, seg = self.probability(ctx)
        sims = np.append(self.matrix @ ctx.embeddings[seg], -np.inf)[self.cat_index]
        top = np.sort(sims, axis=1)[:, -3:].astype(np.float64)
        means = np.where(np.isfinite(top), top, 0.0).sum(1) / self.cat_top
        per_cat = dict(zip(self.cats, means.tolist(), strict=True))
        cat = max(per_cat, key=per_cat.__getitem__)
        thr = self.opts["categories"].get(cat, self.threshold)
        segs = segments(ctx.text)
        if len(segs) == 1 and self.opts["cues"]:  # the text is its one segment: its cues are computed
            cues = [n for (n, _), on in zip(CUES, self._cues(segs[0], ctx), strict=True) if on]
        else:
            cues = [n for n, rx in CUES if rx.search(ctx.text[:20_000])]
        v = Verdict(p, p >= thr, cat if p >= 0.2 else "", [],
                    f"{cat} p={p:.2f} (threshold {thr:.2f})" + (f"; cues: {', '.join(cues)}" if cues else ""),
                    {"category": cat, "category_similarity": {k: round(v, 3) for k, v in per_cat.items()}})
        return self.cascade.decide(v, ctx)
