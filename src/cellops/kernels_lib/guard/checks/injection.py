"""Prompt injection and jailbreak: heuristics (instruction override, personas, system-prompt
extraction, encoded payloads, invisible Unicode) plus an embedding classifier trained on the
project's own exemplars (and the user's, with the ``exemplars`` option).
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
    ("persona_jailbreak", re.compile(
        r"\b(?:DAN|do anything now|developer mode|jailbr(?:eak|oken)|god mode|STAN|AIM|DUDE|evil ?(?:bot|ai|"
        r"confidant)|unfiltered|uncensored|unrestricted)\b", re.DOTALL), 0.75),
    ("persona_jailbreak", re.compile(
        r"\b(?:pretend|act as|roleplay|role-play|imagine|simulate|you are now|from now on,? you)\b.{0,80}?"
        r"\b(?:no|without|free (?:from|of)|not bound|ignores?|beyond)\b.{0,30}?\b(?:rules|restrictions|limits|"
        r"limitations|filters|guidelines|ethics|morals?|censorship|polic(?:y|ies)|safeguards)\b", _F), 0.85),
    ("persona_jailbreak", re.compile(
        r"\b(?:never|don'?t|do not|must not) (?:refuse|decline|say (?:no|you can'?t))\b|\bstay in character\b|"
        r"\bbegin (?:your (?:reply|answer|response) )?with ['\"]sure", _F), 0.6),
    ("fake_system_tag", re.compile(
        r"</?(?:system|im_start|im_end|assistant|sys)>|\[/?INST\]|<<SYS>>|<\|(?:im_start|system|endoftext)\|>|"
        r"^\s*#{1,3}\s*(?:system|new instructions)\b", re.IGNORECASE | re.MULTILINE), 0.8),
    ("encoded_payload", re.compile(
        r"\b(?:decode|decipher|translate|reverse|unscramble|rot13|base64|hex)\b.{0,60}?\b(?:and|then)\b.{0,20}?"
        r"\b(?:follow|execute|obey|do what|run|comply|act on)\b", _F), 0.8),
    ("exfiltration", re.compile(
        r"\b(?:send|forward|post|upload|leak|exfiltrate)\b.{0,60}?\b(?:user'?s?|conversation|chat|data|"
        r"credentials|password|history|api keys?)\b.{0,40}?\b(?:to|at)\b\s*(?:https?://|\S+@\S+)", _F), 0.8),
]
_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")
_TAGS = re.compile("[\U000e0020-\U000e007e]+")
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/])")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
HEURISTIC_SCAN = 50_000  # regex work on huge texts is bounded to the head and tail


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
    }
    default_threshold = 0.6
    uses_embedding = True
    stream = "sentence"

    def setup(self) -> None:
        if not self.opts["embedding"]:
            self.uses_embedding = False  # type: ignore[misc]
            return
        pos = [r["text"] for r in builtin_exemplars("injection")]
        neg = [r["text"] for r in builtin_exemplars("benign")] + [r["text"] for r in builtin_exemplars("harmful")]
        if self.opts["exemplars"]:
            for r in read_jsonl(self.opts["exemplars"]):
                (neg if r["label"] == "benign" else pos).append(r["text"])
        texts = pos + neg

        def build() -> tuple[Any, Any]:
            return exemplar_matrix(texts), np.array([1.0] * len(pos) + [0.0] * len(neg))

        self.w, self.b = cached_logreg(["injection", texts], build)

    def run(self, ctx: TextCtx) -> Verdict:
        text = ctx.text
        if len(text) > HEURISTIC_SCAN:
            text = text[:HEURISTIC_SCAN // 2] + "\n" + text[-HEURISTIC_SCAN // 2:]
        hits: list[tuple[str, float, int, int]] = []
        notes = []
        if self.opts["heuristics"]:
            hits = _heuristics(text)
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
        emb = 0.0
        if self.opts["embedding"]:
            emb = float(np.max(sigmoid(ctx.embeddings @ self.w + self.b)))
        best = max(hits, key=lambda h: h[1], default=None)
        score = max(emb, best[1] if best else 0.0)
        label = best[0] if best and best[1] >= emb else ("embedding_similar" if emb > 0 else "")
        spans = [Span(s, e, lab) for lab, _, s, e in hits if e > s]
        reason = (f"matched {', '.join(sorted({h[0] for h in hits}))}" if hits else "") + (
            f"{'; ' if hits else ''}classifier {emb:.2f}" if self.opts["embedding"] else "")
        return Verdict(score, score >= self.threshold, label, spans, reason,
                       {"classifier": round(emb, 4), "heuristics": sorted({h[0] for h in hits}), "decoded": notes})
