"""Harmful requests (content policy): a logistic-regression layer over MiniLM embeddings plus
intent-cue features, trained on the project's own exemplars (guard/exemplars/harmful.jsonl and
benign.jsonl). The category is the nearest category by exemplar similarity; a policy can set a
threshold per category.

Why cue features: MiniLM embeds *topic* far more than *intent*, so "explain how ransomware is
detected" and "write ransomware" land close together. Words that carry intent (covertly,
illegally, convince ... to, defamatory) are added as explicit features the classifier weighs.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..embed import TextCtx, builtin_exemplars, cached_logreg, exemplar_matrix, read_jsonl, sigmoid
from ..report import Verdict
from .base import Check, Opt, register

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


def cue_vector(text: str) -> np.ndarray:
    return np.array([CUE_SCALE if rx.search(text) else 0.0 for _, rx in CUES], dtype=np.float32)


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
    }
    default_threshold = 0.5
    uses_embedding = True
    stream = "sentence"

    def setup(self) -> None:
        rows = builtin_exemplars("harmful") + builtin_exemplars("benign")
        if self.opts["exemplars"]:
            rows += read_jsonl(self.opts["exemplars"])
        self.labels = [str(r["label"]) for r in rows]
        self.cats = sorted({lab for lab in self.labels if lab != "benign"})
        unknown = sorted(set(self.opts["categories"]) - set(self.cats))
        if unknown:
            from ...errors import InvalidInputError

            raise InvalidInputError(f"harmful: unknown category '{unknown[0]}'; valid: {', '.join(self.cats)}")
        texts = [r["text"] for r in rows]
        self.matrix = exemplar_matrix(texts, self.ws)
        use_cues = self.opts["cues"]

        def build() -> tuple[Any, Any]:
            x = self.matrix
            if use_cues:
                x = np.hstack([x, np.stack([cue_vector(t) for t in texts])])
            return x, np.array([0.0 if lab == "benign" else 1.0 for lab in self.labels])

        self.w, self.b = cached_logreg(["harmful", texts, self.labels, use_cues, CUE_SCALE,
                                        [p.pattern for _, p in CUES]], build, self.ws)
        lab = np.array(self.labels)
        self.cat_rows = {c: np.flatnonzero(lab == c) for c in self.cats}

    def probability(self, ctx: TextCtx) -> tuple[float, int]:
        """P(harmful) of the most harmful segment, and that segment's index."""
        e = ctx.embeddings
        if self.opts["cues"]:
            from ..embed import segments

            cues = np.stack([cue_vector(s) for s in segments(ctx.text)])
            e = np.hstack([e, cues[: len(e)]])
        p = sigmoid(e @ self.w + self.b)
        i = int(np.argmax(p))
        return float(p[i]), i

    def run(self, ctx: TextCtx) -> Verdict:
        p, seg = self.probability(ctx)
        sims = self.matrix @ ctx.embeddings[seg]
        per_cat = {c: float(np.mean(np.sort(sims[idx])[-3:])) for c, idx in self.cat_rows.items()}
        cat = max(per_cat, key=per_cat.__getitem__)
        thr = self.opts["categories"].get(cat, self.threshold)
        cues = [n for n, rx in CUES if rx.search(ctx.text[:20_000])]
        return Verdict(p, p >= thr, cat if p >= 0.2 else "", [],
                       f"{cat} p={p:.2f} (threshold {thr:.2f})" + (f"; cues: {', '.join(cues)}" if cues else ""),
                       {"category": cat, "category_similarity": {k: round(v, 3) for k, v in per_cat.items()}})
