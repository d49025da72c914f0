"""Classifier first, model second: the harmful and injection checks send only their uncertain band
to ``llm_judge`` on the judge model.

The fast classifier decides alone below ``band[0]`` (confidently safe) and at or above
``band[1]`` (confidently flagged); in between, a model reads the request. Most texts never reach
the judge, so the median latency stays the classifier's. The default bands come from the
project's own exemplars (out-of-fold scores in grouped cross-validation, :func:`calibrate_band`),
never from a dev or test set: the lower edge is the score below which only ``LOW_MISS`` of the
flagged exemplars fall, the upper edge the score above which only ``HIGH_FPR`` of the benign ones do.

Inside the band, a judge model that ships a probe for the check (probe.py: ``qwen-1.5b``,
``qwen-0.5b`` and the embedded SmolLM2 for ``harmful``; input rail, built-in prompt) reads the
request once, and the probe's logit on its hidden state is weighed against the classifier's score
in log-odds, with the weights the probe file carries (fitted on the in-band exemplars, out of
fold): a classifier that leans one way needs a confident probe to be overruled. Where the
classifier's scores are not the ones that combination was fitted on (``encoder: tuned``), the
probe's logit decides alone (>= 0). Any other judge (another model, a custom prompt, an endpoint,
the injection band) decides the band alone, flagging at P(yes) >= 0.5 or on its yes/unsafe answer.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ...errors import InvalidInputError
from ..embed import TextCtx
from ..report import Verdict
from .base import Opt

LOW_MISS, HIGH_FPR = 0.05, 0.01  # the band's edges: flagged exemplars below / benign above
P_CLIP = 1e-3  # log-odds of probabilities are taken within [P_CLIP, 1 - P_CLIP]

OPTIONS = {
    "judge": Opt("bool", False, "send scores inside 'band' to llm_judge on the judge model (slow, stronger)"),
    "judge_model": Opt("str", None, "model URI of that judge; unset: Cellops.judge_model / CELLOPS_JUDGE_MODEL"),
    "band": Opt("any", None, "[low, high] scores sent to the judge; unset: the band calibrated on the exemplars"),
}


def _band(value: Any, default: tuple[float, float], where: str) -> tuple[float, float]:
    if value is None:
        return default
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value))
    if not ok or not 0.0 <= value[0] <= value[1] <= 1.0:
        raise InvalidInputError(f"{where}: option 'band' must be [low, high] with 0 <= low <= high <= 1; got {value!r}")
    return float(value[0]), float(value[1])


def logit(p: float) -> float:
    p = min(max(p, P_CLIP), 1 - P_CLIP)
    return math.log(p / (1 - p))


class Cascade:
    """The judge half of a cascade, built at policy load (so a wrong model URI fails there)."""

    def __init__(self, opts: dict[str, Any], default_band: tuple[float, float], where: str, ws: Any,
                 with_classifier: bool = True) -> None:
        """``with_classifier``: weigh the judge model's probe against the classifier (False where the check's
        scores are not the ones the probe's combination was fitted on: the probe decides alone)."""
        self.band = _band(opts["band"], default_band, where)
        self.judge = None
        self.probe: Any = None  # probe.Probe, when the judge model ships one for this check
        self.with_classifier = with_classifier
        if opts["judge"]:
            from .judge import LLMJudge

            judge_opts = LLMJudge.validate_options({"model": opts["judge_model"]} if opts["judge_model"] else {}, where)
            self.judge = LLMJudge(judge_opts, 0.5, ws)
            if self.judge.builtin_prompt and hasattr(self.judge.llm, "hidden_state"):
                from . import probe

                self.probe = probe.for_judge(where, self.judge)

    def warm(self) -> None:
        """Evaluate the judge prompt's shared start (policy, worked examples) now, so that the first
        judged text pays only for itself (seconds on a 1.5B model; ``cellops serve`` at startup)."""
        if self.judge is None:
            return
        msgs = self.judge.messages("", "input")
        if self.probe is not None:
            self.judge.llm.hidden_state(msgs)
        elif self.judge.scores:
            self.judge.llm.p_yes(msgs, coarse=True)  # type: ignore[attr-defined]

    def decide(self, v: Verdict, ctx: TextCtx) -> Verdict:
        """``v`` unchanged outside the band (or with no judge); else the judge's decision."""
        low, high = self.band
        if self.judge is None or not low <= v.score < high:
            return v
        if self.probe is not None and ctx.rail == "input":
            return self._probe_decides(v, ctx)
        j = self.judge.run(ctx)
        flagged = j.triggered
        # the score moves to the side of the band the judge chose, so threshold sweeps stay consistent
        score = max(v.score, high) if flagged else min(v.score, low)
        detail = v.detail | {"judge": j.detail, "band": [low, high], "classifier_score": round(v.score, 4)}
        return Verdict(score, flagged, (v.label or "judge") if flagged else "", v.spans if flagged else [],
                       f"{v.reason}; judge: {j.reason}", detail)

    def _probe_decides(self, v: Verdict, ctx: TextCtx) -> Verdict:
        """The in-band decision of the judge model's probe, weighed against the classifier or alone."""
        assert self.judge is not None and self.probe is not None
        t0 = time.perf_counter()
        key = ("probe", self.probe.model_sha256, self.probe.prompt_sha256, ctx.text)
        if key not in ctx.shared:  # one prompt evaluation per text, however many checks ask
            ctx.shared[key] = self.judge.llm.hidden_state(self.judge.messages(ctx.text, "input"))
        zp = self.probe.logit(ctx.shared[key])
        wc, wp, b = self.probe.combine if self.with_classifier else (0.0, 1.0, 0.0)
        z = wc * logit(v.score) + wp * zp + b
        score, flagged = 1 / (1 + math.exp(-min(max(z, -50.0), 50.0))), z >= 0
        judge = {"model": self.judge.model, "probe_logit": round(zp, 3),
                 "judge_ms": round((time.perf_counter() - t0) * 1000, 1)}
        detail = v.detail | {"judge": judge, "band": list(self.band), "classifier_score": round(v.score, 4)}
        reason = f"{v.reason}; {self.judge.model} probe logit {zp:+.2f}"
        if self.with_classifier:
            detail["combined"] = round(score, 4)
            reason += f", combined {score:.2f}"
        return Verdict(score, flagged, (v.label or "judge") if flagged else "", v.spans if flagged else [],
                       reason, detail)


def calibrate_band(oof: Any, y: Any, low_miss: float = LOW_MISS, high_fpr: float = HIGH_FPR) -> tuple[float, float]:
    """The band from out-of-fold exemplar scores ``oof`` with labels ``y`` (1 flagged, 0 benign)."""
    import numpy as np

    pos, neg = np.sort(oof[y == 1]), np.sort(oof[y == 0])
    low = float(pos[int(np.floor(low_miss * len(pos)))])
    high = float(neg[min(len(neg) - 1, int(np.ceil((1 - high_fpr) * len(neg))) - 1)])
    return (min(low, high), max(low, high))
