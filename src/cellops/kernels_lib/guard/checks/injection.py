"""Prompt injection and jailbreak: heuristics (instruction override, personas, refusal
suppression, fake authority, injections aimed at an assistant inside documents, system-prompt
extraction, exfiltration, encoded payloads, invisible Unicode) plus a logistic-regression layer
over MiniLM embeddings and word n-grams, trained on the project's own exemplars (and the user's,
with the ``exemplars`` option).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Any

import numpy as np

from ..embed import TextCtx, builtin_exemplars, cached_logreg, exemplar_matrix, read_jsonl, sigmoid
from ..report import Span, Verdict
from .base import Check, Opt, register
from .cascade import OPTIONS as CASCADE_OPTIONS
from .cascade import Cascade, calibrate_band
from .harmful import NGRAM_MIN_DF, NGRAM_SCALE, NgramTfidf

_F = re.IGNORECASE | re.DOTALL
# (label, pattern, score): wording that only makes sense as an attack on the model's instructions.
HEURISTICS: list[tuple[str, re.Pattern[str], float]] = [
    ("instruction_override", re.compile(
        r"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)\b.{0,40}?\b(?:previous|prior|above|"
        r"earlier|preceding|all|any|your|the|these|those|initial|original|system)\b.{0,30}?\b(?:instructions?|"
        r"rules|prompts?|guidelines|directions|directives|polic(?:y|ies)|constraints|restrictions|safeguards|"
        r"filters|programming|training)\b", _F), 0.9),
    ("instruction_override", re.compile(
        r"\b(?:new|updated|real|actual|override)\s+(?:instructions?|rules|system prompt|task)\s*[:\-]", _F), 0.7),
    ("instruction_override", re.compile(
        r"\b(?:previous|above|prior|old) (?:rules|instructions) (?:no longer|don'?t|do not) apply\b", _F), 0.9),
    ("system_prompt_extraction", re.compile(
        r"\b(?:reveal|show|print|repeat|output|display|dump|leak|tell me|give me|what (?:is|are|were))\b.{0,40}?"
        r"\b(?:system prompt|system message|initial prompt|hidden (?:prompt|instructions|rules)|your (?:instructions|"
        r"rules|prompt|guidelines|configuration)|developer (?:message|prompt)|(?:text|words|everything) above|"
        r"context window)\b", _F), 0.8),
    ("system_prompt_extraction", re.compile(
        r"\b(?:spell(?:s|ing)? out|list|write out|copy|paste|encode|translate)\b.{0,40}?\byour (?:system |hidden |"
        r"initial |original )?(?:instructions|prompt|guidelines|rules|developer notes|internal notes)\b", _F), 0.7),
    # "jailbreak" alone is not here: questions *about* jailbreaks are common and benign
    ("persona_jailbreak", re.compile(
        r"\b(?:DAN|do anything now|jailbroken|jailbreak mode|evil ?(?:bot|ai|confidant|twin))\b", re.DOTALL), 0.75),
    # names and words that are also ordinary ("god mode" cheats, "unrestricted funds"): soft signals
    ("persona_jailbreak", re.compile(
        r"\b(?:developer mode|god mode|STAN|AIM|DUDE|unfiltered|uncensored|unrestricted)\b", re.DOTALL), 0.5),
    ("persona_jailbreak", re.compile(
        r"\b(?:pretend|act as|roleplay|role-play|imagine|simulate|you are now|from now on,? you|persona|character|"
        r"in (?:this|your|that) (?:world|universe|story|game))\b.{0,100}?"
        r"\b(?:no|without|free (?:from|of)|not bound|ignores?|beyond|never)\b.{0,30}?\b(?:rules|restrictions|limits|"
        r"limitations|filters|guidelines|ethics|morals?|moral \w+|censorship|polic(?:y|ies)|safeguards|"
        r"refus\w*|boundaries)\b", _F), 0.85),
    # Soft signals: each alone stays under the default threshold; two together cross it (see run()).
    ("refusal_suppression", re.compile(
        r"\b(?:never|don'?t|do not|must not|can(?:'|no)t|cannot|may not|not allowed to|forbidden (?:from|to)) "
        r"(?:refus\w*|decline|say (?:no|you can'?t))\b|\bwithout (?:refusing|refusal|any refusals?)\b|"
        # not "no disclaimers / no apologies / no caveats": prompt templates say that all the time
        r"\b(?:no|don'?t|do not|never|without|skip(?: the)?) (?:add(?:ing)? |include |including |give |any |the )?"
        r"(?:moraliz\w*|lectur\w*|safety (?:tips|warnings|notes|advice))\b", _F), 0.55),
    ("refusal_suppression", re.compile(
        r"\b(?:begin|start) (?:your |the |each )?(?:reply|answer|response|output)s? with ['\"\u201c](?:sure|"
        r"absolutely|of course|certainly|here is|here's)", _F), 0.6),
    ("fake_authority", re.compile(
        r"\b(?:admin(?:istrator)?|developer|root|sudo|system) (?:override|mode|access) (?:enabled|granted|"
        r"activated|on)\b|\b(?:safety|content) (?:filters?|mode|guidelines|restrictions) (?:are |have been |were )?"
        r"(?:disabled|off|removed|lifted|suspended)\b|\brestrictions? (?:in your (?:prompt|instructions) )?"
        r"(?:were|was|are|have been) (?:left in by mistake|lifted|removed|disabled|turned off|outdated)\b|"
        r"\bnew (?:policy|guidelines|rules) (?:effective|as of|released|from today)", _F), 0.7),
    ("indirect_injection", re.compile(
        r"\b(?:note|message|instructions?|notice)s? (?:to|for) (?:any |all |the )?(?:ai|assistants?|"
        r"language models?|llms?|chat ?bots?|bots?|ai (?:agents?|models?|screeners?|assistants?))\b|"
        r"\b(?:any|all|the) (?:ai|assistants?|language models?|llms?|bots?|agents?) (?:reading|processing|"
        r"summari[sz]ing|screening|parsing|analy[sz]ing|seeing) this\b|"
        r"\b(?:assistant|ai|bot|llm)\s*[,:]\s*(?:when|if|as soon as) you (?:read|see|process|summari[sz]e)", _F), 0.75),
    ("fake_system_tag", re.compile(
        r"</?(?:system|im_start|im_end|assistant|sys)>|\[/?INST\]|<<SYS>>|<\|(?:im_start|system|endoftext)\|>|"
        r"^\s*#{1,3}\s*(?:system|new instructions)\b", re.IGNORECASE | re.MULTILINE), 0.8),
    ("encoded_payload", re.compile(
        r"\b(?:decode|decipher|translate|reverse|unscramble|rot13|base64|hex)\b.{0,60}?\b(?:and|then)\b.{0,20}?"
        r"\b(?:follow|execute|obey|do what|run|comply|act on)\b", _F), 0.8),
    ("exfiltration", re.compile(
        r"\b(?:send|forward|post|upload|leak|exfiltrate|append|include|email)\b.{0,80}?\b(?:user'?s?|conversation|"
        r"chat|data|credentials|passwords?|tokens?|history|messages|api keys?|secrets?|\.env)\b.{0,80}?"
        r"(?:https?://|\b[\w.+-]+@[\w-]+\.\w+)", _F), 0.8),
    ("exfiltration", re.compile(
        r"https?://\S+[?&][\w-]+=\S*.{0,100}?\b(?:user'?s?|conversation|messages|passwords?|tokens?|"
        r"credentials|api keys?|secrets?)\b", _F), 0.7),
]
_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")
_TAGS = re.compile("[\U000e0020-\U000e007e]+")
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/])")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
HEURISTIC_SCAN = 50_000  # regex work on huge texts is bounded to the head and tail
SUPPORT, BOOST = 0.45, 0.1
# L2 of the classifier: chosen by training on the built-in exemplars plus one half of a separately
# written set (attacks and benign look-alikes) and testing on the other half (AUC 0.95-0.96).
L2 = 3e-3
# Same held-out halves: at 0.65, 73-81% of the attacks and 4% of the deliberately attack-like
# benign prompts ("act as a Linux terminal", "ignore the typos") score at or above it; ordinary
# requests very rarely do (none of JailbreakBench's 100 benign behaviors).
DEFAULT_THRESHOLD = 0.65
# The cascade's uncertain band (cascade.py): calibrate() on the built-in exemplars gives band_low
# 0.462 (5% of attacks below), band_high 0.663 (1% of negatives above), 7% of exemplars inside.
DEFAULT_BAND = (0.46, 0.66)


def _heuristics(text: str) -> list[tuple[str, float, int, int]]:
    hits = []
    for label, rx, score in HEURISTICS:
        for m in rx.finditer(text):
            hits.append((label, score, m.start(), m.end()))
            break
    return hits


def _hidden_texts(text: str) -> list[tuple[str, str]]:
    """Payloads hidden from a human reader, decoded: (how, decoded text)."""
    out = []
    tags = "".join(_TAGS.findall(text))
    if tags:  # Unicode tag characters smuggle invisible ASCII
        out.append(("unicode_tags", "".join(chr(ord(c) - 0xE0000) for c in tags)))
    for m in list(_B64.finditer(text))[:20]:
        try:
            raw = base64.b64decode(m.group(0) + "=" * (-len(m.group(0)) % 4), validate=True)
            dec = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if sum(c.isprintable() for c in dec) >= 0.9 * len(dec) and re.search(r"[a-z]{3} [a-z]{2}", dec, re.I):
            out.append(("base64", dec))
    folded = unicodedata.normalize("NFKC", text)
    if folded != text:
        out.append(("homoglyphs", folded))
    leet = text.lower().translate(_LEET)
    if leet != text.lower():
        out.append(("leetspeak", leet))
    return out


@register
class Injection(Check):
    name = "injection"
    help = ("prompt injection and jailbreak attempts: heuristics + MiniLM classifier over exemplars; "
            "threshold = score at or above which the text is flagged")
    options = {
        "heuristics": Opt("bool", True, "run the pattern heuristics"),
        "embedding": Opt("bool", True, "run the embedding classifier"),
        "exemplars": Opt("str", None, "extra JSONL of {text, label}; label 'benign' is a negative, "
                                      "anything else an attack"),
        "ngrams": Opt("bool", True, "use word 1-2 gram TF-IDF features next to the embedding"),
        **CASCADE_OPTIONS,
    }
    default_threshold = DEFAULT_THRESHOLD
    uses_embedding = True
    stream = "sentence"

    def setup(self) -> None:
        self.cascade = Cascade(self.opts, DEFAULT_BAND, "injection", self.ws)
        if not self.opts["embedding"]:
            self.uses_embedding = False  # type: ignore[misc]
            return
        pos, neg = _exemplar_sets()
        if self.opts["exemplars"]:
            for r in read_jsonl(self.opts["exemplars"]):
                (neg if r["label"] == "benign" else pos).append(r["text"])
        texts = pos + neg
        self.tfidf = NgramTfidf(texts) if self.opts["ngrams"] else None
        tfidf = self.tfidf

        def build() -> tuple[Any, Any]:
            x = exemplar_matrix(texts)
            if tfidf is not None:
                x = np.hstack([x, tfidf.matrix(texts)])
            return x, np.array([1.0] * len(pos) + [0.0] * len(neg))

        w, self.b = cached_logreg(["injection", texts, tfidf is not None, NGRAM_SCALE, NGRAM_MIN_DF, L2], build, l2=L2)
        d = len(w) - (len(tfidf) if tfidf is not None else 0)  # the embedding's share of the weights
        self.w_emb, self.w_ngram = w[:d], w[d:]

    def classifier(self, ctx: TextCtx) -> float:
        """P(attack) of the most suspicious segment."""
        from ..embed import segments

        z = ctx.embeddings @ self.w_emb + self.b
        if self.tfidf is not None:
            for i, seg in enumerate(segments(ctx.text)[: len(z)]):
                z[i] += self.tfidf.score(seg, self.w_ngram)
        return float(np.max(sigmoid(z)))

    def run(self, ctx: TextCtx) -> Verdict:
        text = ctx.text
        if len(text) > HEURISTIC_SCAN:
            text = text[:HEURISTIC_SCAN // 2] + "\n" + text[-HEURISTIC_SCAN // 2:]
        hits, notes = signals(text) if self.opts["heuristics"] else ([], [])
        emb = self.classifier(ctx) if self.opts["embedding"] else 0.0
        best = max(hits, key=lambda h: h[1], default=None)
        score = combine(hits, emb)
        label = best[0] if best and best[1] >= emb else ("embedding_similar" if emb > 0 else "")
        spans = [Span(s, e, lab) for lab, _, s, e in hits if e > s]
        reason = (f"matched {', '.join(sorted({h[0] for h in hits}))}" if hits else "") + (
            f"{'; ' if hits else ''}classifier {emb:.2f}" if self.opts["embedding"] else "")
        v = Verdict(score, score >= self.threshold, label, spans, reason,
                    {"classifier": round(emb, 4), "heuristics": sorted({h[0] for h in hits}), "decoded": notes})
        return self.cascade.decide(v, ctx)


def signals(text: str) -> tuple[list[tuple[str, float, int, int]], list[str]]:
    """The heuristic hits (label, score, start, end) of ``text``, and notes on decoded payloads."""
    hits = _heuristics(text)
    notes = []
    inv = _INVISIBLE.findall(text)
    if len(inv) >= 3 or any(ord(c) >= 0xE0000 or 0x202A <= ord(c) <= 0x2069 for c in inv):
        m = _INVISIBLE.search(text)
        hits.append(("invisible_unicode", 0.7, m.start(), m.end()) if m else ("invisible_unicode", 0.7, 0, 0))
    ctrl = sum(1 for c in text[:5000] if unicodedata.category(c) == "Cc" and c not in "\n\r\t")
    if ctrl > max(8, 0.05 * min(len(text), 5000)) or "\ufffd" * 4 in text:
        hits.append(("binary_or_control_chars", 0.65, 0, 0))
    for how, decoded in _hidden_texts(text):
        for label, score, _, _ in _heuristics(decoded):
            hits.append((f"{how}:{label}", min(1.0, score + 0.1), 0, 0))
            notes.append(f"decoded {how}: {decoded[:80]!r}")
    return hits, notes


def combine(hits: list[tuple[str, float, int, int]], classifier: float) -> float:
    """Independent signals add up: each further heuristic (or a classifier score) of at least
    SUPPORT adds BOOST, so two soft signals ("never refuse" + "god mode") flag a text that neither
    flags alone."""
    ranked = sorted([h[1] for h in hits] + [classifier], reverse=True)
    return min(0.99, ranked[0] + BOOST * sum(1 for v in ranked[1:] if v >= SUPPORT))


def _exemplar_sets() -> tuple[list[str], list[str]]:
    """Attacks, and negatives: ordinary benign and harmful requests (harmful, but not attacks on the
    model's instructions), plus benign prompts that look like attacks: role-play, "ignore the
    typos", questions about jailbreaks, and instruction-heavy prompt templates (RAG, JSON, rules)."""
    pos = [r["text"] for r in builtin_exemplars("injection")]
    neg = [r["text"] for name in ("benign", "harmful", "injection_benign") for r in builtin_exemplars(name)]
    return pos, neg


def calibrate(folds: int = 5, seed: int = 0) -> dict[str, float]:
    """Out-of-fold scores of the whole check (classifier trained on k-1 folds + heuristics) on the
    built-in exemplars -> the cascade band (DEFAULT_BAND) and the share of exemplars inside it."""
    from ..embed import train_logreg

    pos, neg = _exemplar_sets()
    texts = pos + neg
    y = np.array([1.0] * len(pos) + [0.0] * len(neg))
    fold = np.random.default_rng(seed).permutation(len(texts)) % folds
    emb = exemplar_matrix(texts)
    oof = np.zeros(len(texts))
    for k in range(folds):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        tf = NgramTfidf([texts[i] for i in tr])
        w, b = train_logreg(np.hstack([emb[tr], tf.matrix([texts[i] for i in tr])]), y[tr], l2=L2)
        oof[te] = sigmoid(np.hstack([emb[te], tf.matrix([texts[i] for i in te])]) @ w + b)
    score = np.array([combine(signals(t)[0], float(p)) for t, p in zip(texts, oof, strict=True)])
    low, high = calibrate_band(score, y)
    return {"band_low": low, "band_high": high, "in_band": float(np.mean((score >= low) & (score < high))),
            "recall_at_threshold": float(np.mean(score[y == 1] >= DEFAULT_THRESHOLD)),
            "benign_fpr_at_threshold": float(np.mean(score[y == 0] >= DEFAULT_THRESHOLD))}
