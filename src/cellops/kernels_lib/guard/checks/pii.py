"""PII and secrets: presidio-analyzer's pattern recognizers (Luhn for cards, checksum for IBANs,
phonenumbers for phones), run directly without an NLP engine, plus patterns for API keys and
secrets that presidio does not cover. With ``ner: true`` (the ``strict`` policy) or a NER entity
in ``entities``, names, places, addresses, organisations and dates too (pii_ner.py: presidio's
spaCy engine on the packaged small English model plus patterns; loaded on first use).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from typing import Any

from ..embed import TextCtx
from ..report import Span, Verdict
from .base import Check, Opt, register
from .pii_ner import NER_ENTITIES

PATTERN_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
                    "SECRET", "URL", "CRYPTO")
ENTITIES = PATTERN_ENTITIES + NER_ENTITIES
DEFAULT_ENTITIES = [e for e in PATTERN_ENTITIES if e != "URL"]  # a URL is rarely personal data
# When two detections overlap, the more specific one wins (a card number is also phone-shaped;
# a pattern match beats a spaCy entity; a street line beats the place it names).
PRIORITY = {"SECRET": 0, "CREDIT_CARD": 1, "IBAN_CODE": 1, "US_SSN": 2, "EMAIL_ADDRESS": 2,
            "CRYPTO": 2, "IP_ADDRESS": 3, "URL": 4, "PHONE_NUMBER": 5, "DATE_TIME": 6, "ADDRESS": 7,
            "PERSON": 8, "LOCATION": 9, "ORGANIZATION": 9}
MAX_SCAN = 200_000  # characters scanned per text: bounded time on huge inputs

_SECRETS: list[tuple[str, re.Pattern[str], float]] = [
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 0.95),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"), 0.95),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), 0.9),
    ("openai_key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"), 0.85),
    ("stripe_key", re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"), 0.95),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), 0.9),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0.85),
    ("private_key", re.compile(
        r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[A-Za-z0-9+/=\s]{0,8000}?-----END [A-Z ]{0,20}PRIVATE KEY-----"), 1.0),
]
# key = value where the key names a credential and the value looks random (entropy check).
_ASSIGN = re.compile(
    r"(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|token|password|passwd|pwd)"
    r"\b[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9_\-/+=.!@#$%^&*]{8,128})")

# Phone shapes presidio's region-bound matcher misses (other countries' formats, extensions).
_PHONE = re.compile(
    r"(?<![\w.+/-])(?:(?:\+|00)\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}"
    r"(?:\s?(?:x|ext\.?|#)\s?\d{1,6})?(?![\w-])")
_PHONE_CONTEXT = re.compile(r"(?i)\b(?:call|phone|tel|telephone|mobile|cell|desk|office|fax|contact|"
                            r"number|reach|whatsapp|text me|ring)\b[^\n]{0,40}$")
_PHONE_LABEL_AFTER = re.compile(r"(?i)\s*[(\[]?(?:mobile|cell|office|home|work|fax|tel|phone|desk)\b")
# Dates and SSN-shaped numbers are not phones (an SSN presidio rejected is still not a phone).
_NOT_PHONE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$|^\d{3}-\d{2}-\d{4}$")

_lock = threading.Lock()
_recognizers: list[Any] | None = None


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


def recognizers() -> list[Any]:
    """presidio's pattern recognizers, built once per process (importing presidio takes seconds)."""
    global _recognizers
    with _lock:
        if _recognizers is None:
            import tldextract
            from presidio_analyzer.predefined_recognizers import (
                CreditCardRecognizer,
                CryptoRecognizer,
                EmailRecognizer,
                IbanRecognizer,
                IpRecognizer,
                PhoneRecognizer,
                UrlRecognizer,
                UsSsnRecognizer,
            )

            # The bundled public-suffix snapshot only: the default extractor fetches the list
            # from the network on first use, which hangs where there is none.
            extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

            class OfflineEmail(EmailRecognizer):  # type: ignore[misc]
                def validate_result(self, pattern_text: str) -> bool:
                    return extractor(pattern_text.rsplit("@", 1)[-1]).fqdn != ""

            class OfflineUrl(UrlRecognizer):  # type: ignore[misc]
                def validate_result(self, pattern_text: str) -> bool | None:
                    host = re.sub(r"^[a-z]+://", "", pattern_text, flags=re.I).split("/")[0]
                    return extractor(host).suffix != ""

            _recognizers = [CreditCardRecognizer(), IbanRecognizer(), UsSsnRecognizer(),
                            IpRecognizer(), PhoneRecognizer(), OfflineEmail(), OfflineUrl(),
                            CryptoRecognizer()]
        return _recognizers


def detect(text: str, entities: list[str], min_score: float) -> list[tuple[int, int, str, float]]:
    """(start, end, entity, score) of every PII span in ``text``, overlaps resolved."""
    text = text[:MAX_SCAN]
    want = set(entities)
    found: list[tuple[int, int, str, float]] = []
    for rec in recognizers():
        ents = [e for e in rec.supported_entities if e in want]
        if ents:
            found += [(r.start, r.end, r.entity_type, float(r.score))
                      for r in rec.analyze(text, ents, None) if r.score >= min_score]
    if "PHONE_NUMBER" in want:
        found += _phones(text, min_score)
    if "SECRET" in want:
        found += _secrets(text)
    if want & set(NER_ENTITIES):
        from .pii_ner import detect_ner

        found += detect_ner(text, want, min_score)
    return _resolve(found)


def _phones(text: str, min_score: float) -> list[tuple[int, int, str, float]]:
    out = []
    for m in _PHONE.finditer(text):
        s = m.group(0)
        digits = sum(c.isdigit() for c in re.split(r"(?i)\s?(?:x|ext\.?|#)", s)[0])  # extension excluded
        if not 7 <= digits <= 15 or _NOT_PHONE.match(s) or s.count(".") == 3:
            continue
        score = 0.3
        if (_PHONE_CONTEXT.search(text[max(0, m.start() - 60):m.start()])
                or _PHONE_LABEL_AFTER.match(text[m.end():m.end() + 20])):
            score += 0.3
        if s[0] in "+(" or re.search(r"(?i)x|ext|#", s):
            score += 0.15
        if score >= min_score:
            out.append((m.start(), m.end(), "PHONE_NUMBER", score))
    return out


def _secrets(text: str) -> list[tuple[int, int, str, float]]:
    out = [(m.start(), m.end(), "SECRET", score) for _, rx, score in _SECRETS for m in rx.finditer(text)]
    for m in _ASSIGN.finditer(text):
        value = m.group(1)
        if _entropy(value) >= 3.0 and any(c.isdigit() for c in value):
            out.append((m.start(1), m.end(1), "SECRET", 0.8))
    return out


def _resolve(found: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """Keep the most specific, then longest, span where detections overlap."""
    ranked = sorted(found, key=lambda f: (PRIORITY.get(f[2], 9), -(f[1] - f[0]), -f[3]))
    kept: list[tuple[int, int, str, float]] = []
    for f in ranked:
        if all(f[1] <= k[0] or f[0] >= k[1] for k in kept):
            kept.append(f)
    return sorted(kept)


@register
class PII(Check):
    name = "pii"
    help = ("personal data and secrets (email, phone, card with Luhn, IBAN with checksum, US SSN, "
            "IP, API keys; URL and crypto wallets on request; with ner: true names, places, addresses, "
            "organisations and dates); threshold = minimum match confidence")
    options = {
        "entities": Opt("str_list", DEFAULT_ENTITIES, f"which of: {', '.join(ENTITIES)}"),
        "ner": Opt("bool", False, f"also {', '.join(NER_ENTITIES)} (spaCy NER + place and name lists + patterns; ~7 ms CPU per short text)"),
        "verify_names": Opt("bool", False, "a model reads each PERSON found and drops those it does not call a name (~0.9 s per name with qwen-1.5b)"),
        "verify_model": Opt("str", None, "model URI of verify_names (a local llama.cpp model); unset: the judge model"),
    }
    default_threshold = 0.4
    default_action = "redact"
    can_redact = True
    stream = "window"

    def setup(self) -> None:
        bad = [e for e in self.opts["entities"] if e not in ENTITIES]
        if bad:
            from ...errors import InvalidInputError

            raise InvalidInputError(f"pii: unknown entity '{bad[0]}'; valid: {', '.join(ENTITIES)}")
        if self.opts["ner"]:
            self.opts["entities"] = list(dict.fromkeys([*self.opts["entities"], *NER_ENTITIES]))
        recognizers()  # pay the presidio import when the policy loads, not on the first call
        if set(self.opts["entities"]) & set(NER_ENTITIES):
            from .pii_ner import engine

            engine()  # the spaCy model too, only for policies that use it
        self.verifier = None  # the model of verify_names (pii_verify.py)
        if self.opts["verify_names"]:
            from ...errors import InvalidInputError
            from .pii_verify import NameVerifier

            if "PERSON" not in self.opts["entities"]:
                raise InvalidInputError("pii: verify_names checks PERSON spans; add ner: true (or PERSON to entities)")
            self.verifier = NameVerifier(self.opts["verify_model"], self.ws)

    def run(self, ctx: TextCtx) -> Verdict:
        hits = detect(ctx.text, self.opts["entities"], self.threshold)
        detail, verified = {}, ""
        if self.verifier is not None and (names := sum(h[2] == "PERSON" for h in hits)):
            hits, detail["names_dropped"] = self.verifier.keep(ctx.text, hits)
            verified = f"{self.verifier.model} kept {names - detail['names_dropped']} of {names} names"
        if not hits:
            return Verdict(0.0, False, reason=verified, detail=detail)
        counts = Counter(h[2] for h in hits)
        reason = ", ".join(f"{n} {ent}" for ent, n in sorted(counts.items()))
        return Verdict(
            max(h[3] for h in hits), True, label=",".join(sorted(counts)),
            spans=[Span(s, e, ent) for s, e, ent, _ in hits],
            reason=f"{reason} ({verified})" if verified else reason, detail=detail,
        )
