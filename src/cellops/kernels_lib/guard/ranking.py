"""Threshold-free figures of a detector's scores: AUC and the cut at a benign false-positive rate
(the calibration of the harmful check, ``guard eval`` and the benchmarks share them)."""

from __future__ import annotations

import numpy as np


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """P(a random positive outscores a random negative), ties counted half."""
    score, y = np.asarray(score, float), np.asarray(y, bool)
    pos, neg = score[y], np.sort(score[~y])
    lo, hi = np.searchsorted(neg, pos, "left"), np.searchsorted(neg, pos, "right")
    return float(np.mean(lo + 0.5 * (hi - lo)) / len(neg))


def fpr_cut(neg: np.ndarray, fpr: float = 0.05) -> float:
    """The strictest score a flag must exceed so that at most ``fpr`` of ``neg`` are flagged."""
    neg = np.sort(np.asarray(neg, float))
    return float(neg[int(np.ceil((1 - fpr) * len(neg))) - 1])


def recall_at_fpr(score: np.ndarray, y: np.ndarray, fpr: float = 0.05) -> float:
    """Share of positives above the cut that flags at most ``fpr`` of the negatives."""
    score, y = np.asarray(score, float), np.asarray(y, bool)
    return float(np.mean(score[y] > fpr_cut(score[~y], fpr)))
