"""Classifier first, model second: the harmful and injection checks send only their uncertain band
to ``llm_judge`` on the judge model.

The fast classifier decides alone below ``band[0]`` (confidently safe) and at or above
``band[1]`` (confidently flagged); in between, a model reads the request and its yes/no decides.
Most texts never reach the judge, so the median latency stays the classifier's. The default
bands come from the project's own exemplars (out-of-fold scores in grouped cross-validation,
:func:`calibrate_band`), never from a dev or test set: the lower edge is the score below which
only 5% of the flagged exemplars fall, the upper edge the score above which only 1% of the
benign ones do.
"""

from __future__ import annotations

from typing import Any

from ...errors import InvalidInputError
from ..embed import TextCtx
from ..report import Verdict
from .base import Opt

LOW_MISS, HIGH_FPR = 0.05, 0.01  # the band's edges: flagged exemplars below / benign above

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


class Cascade:
    """The judge half of a cascade, built at policy load (so a wrong model URI fails there)."""

    def __init__(self, opts: dict[str, Any], default_band: tuple[float, float], where: str, ws: Any) -> None:
        self.band = _band(opts["band"], default_band, where)
        self.judge = None
        if opts["judge"]:
            from .judge import LLMJudge

            judge_opts = LLMJudge.validate_options({"model": opts["judge_model"]} if opts["judge_model"] else {}, where)
            self.judge = LLMJudge(judge_opts, 0.5, ws)

    def decide(self, v: Verdict, ctx: TextCtx) -> Verdict:
        """``v`` unchanged outside the band (or with no judge); else the judge's decision."""
        low, high = self.band
        if self.judge is None or not low <= v.score < high:
            return v
        j = self.judge.run(ctx)
        # the score moves to the side of the band the judge chose, so threshold sweeps stay consistent
        score = max(v.score, high) if j.triggered else min(v.score, low)
        detail = v.detail | {"judge": j.detail, "band": [low, high], "classifier_score": round(v.score, 4)}
        label = (v.label or "judge") if j.triggered else ""
        return Verdict(score, j.triggered, label, v.spans if j.triggered else [], f"{v.reason}; judge: {j.reason}", detail)


def calibrate_band(oof: Any, y: Any) -> tuple[float, float]:
    """The band from out-of-fold exemplar scores ``oof`` with labels ``y`` (1 flagged, 0 benign)."""
    import numpy as np

    pos, neg = np.sort(oof[y == 1]), np.sort(oof[y == 0])
    low = float(pos[int(np.floor(LOW_MISS * len(pos)))])
    high = float(neg[min(len(neg) - 1, int(np.ceil((1 - HIGH_FPR) * len(neg))) - 1)])
    return (min(low, high), max(low, high))
