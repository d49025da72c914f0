"""The statistics behind the dashboard, all from scipy (no hand-made tests):

- input drift: a permutation test (``scipy.stats.permutation_test``) on the distance between the
  mean input embeddings of the reference and the current window (a linear-kernel MMD test);
- output length drift: two-sample Kolmogorov-Smirnov (``ks_2samp``) on completion tokens;
- refusal and groundedness rates: Fisher's exact test (``fisher_exact``) on the 2x2 counts;
- A/B: Fisher's exact test on thumbs up/down per variant, Mann-Whitney U (``mannwhitneyu``) on
  latency.
Each returns None-valued figures with ``"enough": False`` below its minimum sample size.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

ALPHA = 0.05
MIN_WINDOW = 5  # requests per drift window
MIN_RATINGS = 10  # rated answers per variant before the A/B view names a winner
MIN_LATENCIES = 10
REFUSAL = re.compile(r"\b(i can(?:no|')t|i cannot|i'm sorry|i am sorry|i (?:do not|don't) know|"
                     r"as an ai|i'm not able|i am not able|i won't|blocked by guard policy)\b", re.I)


def embedding_drift(ref: np.ndarray, cur: np.ndarray, resamples: int = 999, seed: int = 0) -> dict[str, Any]:
    """Two-sample permutation test: is the current window's mean embedding away from the reference's?"""
    from scipy.stats import permutation_test

    if len(ref) < MIN_WINDOW or len(cur) < MIN_WINDOW:
        return {"test": "permutation (mean embedding distance)", "enough": False, "p_value": None,
                "statistic": None, "drifted": None}
    emb = np.concatenate([ref, cur]).astype(np.float64)

    def stat(i: np.ndarray, j: np.ndarray) -> float:
        return float(np.linalg.norm(emb[i].mean(axis=0) - emb[j].mean(axis=0)))

    res = permutation_test((np.arange(len(ref)), np.arange(len(ref), len(emb))), stat,
                           permutation_type="independent", alternative="greater",
                           n_resamples=resamples, vectorized=False, random_state=seed)
    p = float(res.pvalue)
    return {"test": "permutation (mean embedding distance)", "enough": True, "p_value": p,
            "statistic": float(res.statistic), "drifted": p < ALPHA}


def length_drift(ref: list[float], cur: list[float]) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    if len(ref) < MIN_WINDOW or len(cur) < MIN_WINDOW:
        return {"test": "ks_2samp", "enough": False, "p_value": None, "drifted": None}
    res = ks_2samp(ref, cur)
    p = float(res.pvalue)
    return {"test": "ks_2samp", "enough": True, "p_value": p, "statistic": float(res.statistic),
            "reference_mean": float(np.mean(ref)), "current_mean": float(np.mean(cur)), "drifted": p < ALPHA}


def rate_drift(ref: list[bool], cur: list[bool]) -> dict[str, Any]:
    """Fisher's exact test on a yes/no property (refused, grounded) in two windows."""
    from scipy.stats import fisher_exact

    if len(ref) < MIN_WINDOW or len(cur) < MIN_WINDOW:
        return {"test": "fisher_exact", "enough": False, "p_value": None, "drifted": None}
    table = [[sum(ref), len(ref) - sum(ref)], [sum(cur), len(cur) - sum(cur)]]
    p = float(fisher_exact(table).pvalue)
    return {"test": "fisher_exact", "enough": True, "p_value": p, "reference_rate": sum(ref) / len(ref),
            "current_rate": sum(cur) / len(cur), "drifted": p < ALPHA}


def refused(text: str) -> bool:
    return bool(REFUSAL.search(text or ""))


def ab_compare(up: dict[str, int], down: dict[str, int], latency: dict[str, list[float]]) -> dict[str, Any]:
    """Which variant is better: thumbs-up rate (Fisher) first, latency (Mann-Whitney U) reported beside."""
    from scipy.stats import fisher_exact, mannwhitneyu

    out: dict[str, Any] = {"min_ratings": MIN_RATINGS}
    rated = {v: up.get(v, 0) + down.get(v, 0) for v in ("a", "b")}
    rates = {v: (up.get(v, 0) / rated[v]) if rated[v] else None for v in ("a", "b")}
    thumbs: dict[str, Any] = {"a": rates["a"], "b": rates["b"], "rated": rated, "p_value": None, "winner": None}
    if min(rated.values()) >= MIN_RATINGS:
        p = float(fisher_exact([[up.get("a", 0), down.get("a", 0)], [up.get("b", 0), down.get("b", 0)]]).pvalue)
        thumbs["p_value"] = p
        if p < ALPHA:
            thumbs["winner"] = "a" if rates["a"] > rates["b"] else "b"  # type: ignore[operator]
    lat: dict[str, Any] = {"p_value": None, "faster": None,
                           "a_p50_s": _median(latency.get("a")), "b_p50_s": _median(latency.get("b"))}
    if min(len(latency.get("a", [])), len(latency.get("b", []))) >= MIN_LATENCIES:
        p = float(mannwhitneyu(latency["a"], latency["b"]).pvalue)
        lat["p_value"] = p
        if p < ALPHA:
            lat["faster"] = "a" if lat["a_p50_s"] < lat["b_p50_s"] else "b"
    out |= {"thumbs_up": thumbs, "latency": lat, "winner": thumbs["winner"]}
    if thumbs["p_value"] is None:
        out["verdict"] = f"not enough data (needs {MIN_RATINGS} rated answers per variant; have a={rated['a']}, b={rated['b']})"
    elif thumbs["winner"]:
        w = thumbs["winner"]
        out["verdict"] = (f"{w} is better: thumbs-up {rates[w]:.0%} vs {rates['b' if w == 'a' else 'a']:.0%} "
                          f"(Fisher p={thumbs['p_value']:.3g})")
    else:
        out["verdict"] = f"no significant difference in thumbs-up rate (Fisher p={thumbs['p_value']:.3g})"
    return out


def _median(xs: list[float] | None) -> float | None:
    return float(np.median(xs)) if xs else None


def percentile(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None
