"""Fit a judge model's probe for the harmful check's cascade (guard/checks/probe.py) on the
project's own exemplars, never on a dev or test set, and write it where the cascade finds it:
``guard/probes/harmful-<model hash>.json``.

Every exemplar (the worked-example pairs of the judge prompt left out) is read by the judge model
under the built-in input prompt (``LlamaCppModel.hidden_state``); the probe is fitted by grouped
5-fold cross-validation on all of them (the folds of ``harmful.oof_scores``: a contrastive pair
stays in one fold), and its combination with the classifier (``w_c * logit(classifier) + w_p *
probe + b``) on the exemplars inside the band (default: ``harmful.DEFAULT_BAND``), from the
out-of-fold scores of both. Printed: the L2 chosen, the out-of-fold AUC, and the in-band
exemplars' balanced accuracy for the classifier alone, the probe alone and the combination.

``--cache DIR`` keeps the hidden states (``bench_judge_probe.py`` reads the same folder); they
take ~13 min with qwen-1.5b and ~5 min with qwen-0.5b on 2 cores.

    .venv/bin/python benchmarks/calibrate_cascade.py --judge qwen-1.5b [--cache DIR] [--band low,high]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from _load import LoadWatch
from _scratch import scratch_dir


def balanced_accuracy(flag: np.ndarray, y: np.ndarray) -> float:
    return float((flag[y == 1].mean() + (1 - flag[y == 0].mean())) / 2)


def fit_probe(uri: str, band: str | None, cache: Path | None) -> None:
    """Fit the probe of ``uri`` on the exemplars and write it where the cascade finds it."""
    import datetime

    from bench_judge_probe import hidden_states

    from cellops.kernels_lib.guard.checks import harmful, probe
    from cellops.kernels_lib.guard.checks.cascade import logit
    from cellops.kernels_lib.guard.checks.judge import EXAMPLE_PAIRS, LLMJudge
    from cellops.kernels_lib.guard.embed import train_logreg
    from cellops.kernels_lib.workspace import get_workspace

    low, high = map(float, band.split(",")) if band else harmful.DEFAULT_BAND
    rows, oof_c, y = harmful.oof_scores()
    fold = harmful.grouped_folds(rows)
    keep = np.array([r.get("pair") not in EXAMPLE_PAIRS for r in rows])
    judge = LLMJudge(LLMJudge.validate_options({"model": uri}, "calibrate"), 0.5, get_workspace())
    x, ms = hidden_states(judge, [r["text"] for r in rows], "ex", cache)
    x, y, fold, oof_c = x[keep], y[keep], fold[keep], oof_c[keep]
    print(f"{len(y)} exemplars ({int(y.sum())} harmful), hidden states of size {x.shape[1]}"
          + (f", {ms:.0f} ms per text" if ms else " (cached)"), flush=True)
    l2, oof_p, oof_auc, w, b = probe.fit(x, y, fold)
    band_rows = (oof_c >= low) & (oof_c < high)
    lc = np.array([logit(float(c)) for c in oof_c])
    wc, c0 = train_logreg(np.c_[lc, oof_p][band_rows], y[band_rows], l2=1e-3, iters=2000)
    yb, z = y[band_rows], np.c_[lc, oof_p][band_rows] @ wc + c0
    print(f"L2 {l2:g}, out-of-fold AUC {oof_auc:.4f}; {int(band_rows.sum())} in band [{low}, {high}) "
          f"({int(yb.sum())} harmful); in-band balanced accuracy out of fold: classifier alone (>= "
          f"{harmful.DEFAULT_THRESHOLD}) {balanced_accuracy(oof_c[band_rows] >= harmful.DEFAULT_THRESHOLD, yb):.3f}, "
          f"probe alone (>= 0) {balanced_accuracy(oof_p[band_rows] >= 0, yb):.3f}, combined {balanced_accuracy(z >= 0, yb):.3f}")
    p = probe.Probe("harmful", *probe.judge_key(judge), w, b, (float(wc[0]), float(wc[1]), c0),
                    {"model": uri, "l2": l2, "oof_auc": round(oof_auc, 4), "exemplars": int(len(y)),
                     "exemplars_sha256": harmful.exemplars_sha256(),
                     "band": [low, high], "in_band": int(band_rows.sum()), "fitted": datetime.date.today().isoformat(),
                     "by": "benchmarks/calibrate_cascade.py"})
    out = probe.path_for("harmful", p.model_sha256)
    out.parent.mkdir(exist_ok=True)
    out.write_text(p.to_json())
    print(f"wrote {out} (combine {p.combine[0]:.3f}, {p.combine[1]:.3f}, {p.combine[2]:.3f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", default="qwen-1.5b", help="llama.cpp model URI of the judge")
    ap.add_argument("--band", default=None, help="low,high (default: harmful.DEFAULT_BAND)")
    ap.add_argument("--cache", default=None, help="folder that keeps the hidden states")
    args = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = str(scratch_dir("calibrate-cascade-"))
    fit_probe(args.judge, args.band, Path(args.cache) if args.cache else None)


if __name__ == "__main__":
    with LoadWatch():
        main()
