"""A linear probe on the judge model's hidden state: the cascade's in-band decision for judge
models that ship one.

The judge's P(yes) is one fixed linear map of the model's final hidden state at the last token of
its prompt (the vocabulary head, read at two tokens). A probe is a linear map of that same state
learnt from the check's exemplars: ``LlamaCppModel.hidden_state`` on the built-in input-rail
messages (policy, worked examples, the request), standardised, class-balanced logistic
regression, L2 chosen by the out-of-fold AUC of grouped cross-validation (:func:`fit`). On the dev
guard set it ranks better than P(yes) at the same cost, one prompt evaluation
(docs/guard.md).

A shipped probe is a JSON file in ``guard/probes/`` (no pickle): the weights with the
standardisation folded in, the hashes of the model file and of the prompt it was fitted under
(and, in its meta, of the exemplars), and the in-band combination with the classifier's score
(:class:`Probe`). It applies only to that
model file and that prompt; ``benchmarks/calibrate_cascade.py`` fits and writes one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CellopsError

PROBE_DIR = Path(__file__).resolve().parents[1] / "probes"
L2S = (3e-3, 1e-2, 3e-2, 1e-1, 3e-1)  # candidate L2 strengths, chosen by out-of-fold AUC
ITERS = 1500
FORMAT = 1


def prompt_sha256(messages: list[dict[str, str]]) -> str:
    """The hash of the judge's messages for an empty request: what a probe was fitted under."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Probe:
    """``logit(h) = h @ w + b`` on a hidden state ``h``; in the band the cascade flags at
    ``combine[0] * logit(classifier score) + combine[1] * logit(h) + combine[2] >= 0``."""

    check: str
    model_sha256: str
    prompt_sha256: str
    w: np.ndarray
    b: float
    combine: tuple[float, float, float]
    meta: dict[str, Any] = field(default_factory=dict)

    def logit(self, h: np.ndarray) -> float:
        if h.shape != self.w.shape:
            raise CellopsError(f"probe for {self.check}: hidden state of size {h.size}, probe of size {self.w.size}")
        return float(h @ self.w + self.b)

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "check": self.check, "model_sha256": self.model_sha256,
            "prompt_sha256": self.prompt_sha256, "b": self.b, "combine": list(self.combine),
            "meta": self.meta, "w": [float(f"{x:.7g}") for x in self.w]}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Probe:
        try:
            d = json.loads(text)
            w = np.asarray(d["w"], dtype=np.float32)
            combine = tuple(float(x) for x in d["combine"])
            ok = (d.get("format") == FORMAT and w.ndim == 1 and w.size > 0 and np.isfinite(w).all()
                  and len(combine) == 3 and np.isfinite(combine).all() and np.isfinite(float(d["b"])))
            if not ok:
                raise ValueError("format, weights or combination out of shape")
            return cls(str(d["check"]), str(d["model_sha256"]), str(d["prompt_sha256"]), w, float(d["b"]),
                       combine, dict(d.get("meta", {})))  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError) as e:
            raise CellopsError(f"{where}: not a probe file ({e})") from None


def path_for(check: str, model_sha256: str) -> Path:
    """Where the probe of ``check`` for a model file lives (PROBE_DIR, looked up at call time)."""
    return PROBE_DIR / f"{check}-{model_sha256[:16]}.json"


def judge_key(judge: Any) -> tuple[str, str]:
    """(model file hash, prompt hash) of an ``LLMJudge`` under its built-in input prompt: what a
    probe is fitted for and looked up by."""
    return judge.llm.weights_hash(), prompt_sha256(judge.messages("", "input"))


def for_judge(check: str, judge: Any) -> Probe | None:
    """The shipped probe of ``check`` for this judge's model file and prompt, or None."""
    return load(check, *judge_key(judge))


def load(check: str, model_sha256: str, prompt: str) -> Probe | None:
    """The shipped probe of ``check`` for this model file and prompt hash, or None."""
    f = path_for(check, model_sha256)
    if not f.is_file():
        return None
    p = Probe.from_json(f.read_text(), str(f))
    if (p.check, p.model_sha256, p.prompt_sha256) != (check, model_sha256, prompt):
        return None  # another model with the same hash prefix, or a prompt that has changed since
    return p


def standardise(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(mean, scale, [train, *others] standardised by the training rows' mean and scale)."""
    mu, sd = train.mean(0), train.std(0) + 1e-6
    return mu, sd, [(x - mu) / sd for x in (train, *others)]


def fit(x: np.ndarray, y: np.ndarray, fold: np.ndarray, l2s: tuple[float, ...] = L2S,
        log: Any = print) -> tuple[float, np.ndarray, float, np.ndarray, float]:
    """Fit on hidden states ``x`` with labels ``y`` (1 flagged), folds ``fold``: (chosen L2, its
    out-of-fold logits, their AUC, and w, b on all rows with the standardisation folded in)."""
    from ..embed import train_logreg
    from ..ranking import auc

    best: tuple[float, np.ndarray, float] | None = None
    for l2 in l2s:
        oof = np.zeros(len(y))
        for k in range(int(fold.max()) + 1):
            tr, te = fold != k, fold == k
            _, _, (a, b) = standardise(x[tr], x[te])
            w, b0 = train_logreg(a, y[tr], l2=l2, iters=ITERS)
            oof[te] = b @ w + b0
        score = auc(oof, y == 1)
        log(f"  L2 {l2:g}: out-of-fold AUC {score:.4f}")
        if best is None or score > best[2]:
            best = (l2, oof, score)
    assert best is not None
    l2, oof, score = best
    mu, sd, (xs,) = standardise(x)
    w, b0 = train_logreg(xs, y, l2=l2, iters=ITERS)
    folded = (w / sd).astype(np.float32)
    return l2, oof, score, folded, float(b0 - np.sum(w * mu / sd))
