"""Topical rails (NeMo-style canonical examples): allowed and denied topics defined by example
utterances, matched by MiniLM similarity; the nearest topic is reported as the intent.
"""

from __future__ import annotations

import numpy as np

from ..embed import TextCtx, exemplar_matrix
from ..report import Verdict
from .base import Check, Opt, register


@register
class Topics(Check):
    name = "topics"
    help = ("allowed / denied topics by example utterances; flags a denied topic, or (when 'allowed' "
            "is given) anything not near an allowed topic; threshold = similarity that counts as a match")
    options = {
        "allowed": Opt("examples", {}, "topic: [example utterances] the assistant is for"),
        "denied": Opt("examples", {}, "topic: [example utterances] it must not engage with"),
        "top_k": Opt("int", 2, "how many nearest examples are averaged per topic"),
    }
    default_threshold = 0.45
    default_action = "block"
    uses_embedding = True
    stream = "final"

    def setup(self) -> None:
        if not self.opts["allowed"] and not self.opts["denied"]:
            from ...errors import InvalidInputError

            raise InvalidInputError("topics: give 'allowed' and/or 'denied' as topic: [example utterances]")
        self.topics: list[tuple[str, str]] = []  # (kind, name) per example row
        texts: list[str] = []
        for kind in ("allowed", "denied"):
            for name, examples in self.opts[kind].items():
                for t in examples:
                    self.topics.append((kind, name))
                    texts.append(t)
        self.matrix = exemplar_matrix(texts)

    def run(self, ctx: TextCtx) -> Verdict:
        sims = (self.matrix @ ctx.embeddings.T).max(axis=1)  # best segment per example
        k = max(1, self.opts["top_k"] or 1)
        scores: dict[tuple[str, str], float] = {}
        for key in dict.fromkeys(self.topics):
            idx = [i for i, t in enumerate(self.topics) if t == key]
            scores[key] = float(np.mean(np.sort(sims[idx])[-k:]))
        (kind, intent), best = max(scores.items(), key=lambda kv: kv[1])
        detail = {"intent": intent, "intent_kind": kind,
                  "scores": {f"{k_}:{n}": round(s, 3) for (k_, n), s in scores.items()}}
        denied = {n: s for (k_, n), s in scores.items() if k_ == "denied" and s >= self.threshold}
        if denied:
            name = max(denied, key=denied.__getitem__)
            return Verdict(denied[name], True, f"denied:{name}", [], f"denied topic '{name}' ({denied[name]:.2f})", detail)
        allowed = {n: s for (k_, n), s in scores.items() if k_ == "allowed"}
        if allowed:
            top = max(allowed.values())
            if top < self.threshold:
                return Verdict(1.0 - top, True, "off_topic", [],
                               f"off topic: nearest allowed topic scores {top:.2f} < {self.threshold:.2f}", detail)
        return Verdict(best if kind == "denied" else 0.0, False, f"intent:{intent}", [], f"intent {intent} ({best:.2f})", detail)
