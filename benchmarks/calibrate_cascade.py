"""Fit the cascade's combination weights (cascade.WEIGHTS) for one judge model on the project's
own exemplars, never on a dev or test set.

The harmful check's exemplars get their out-of-fold classifier scores (harmful.oof_scores); those
inside the band (default: the check's DEFAULT_BAND), minus the pairs the judge prompt shows as
worked examples, are judged (P(yes), built-in prompt), and a class-balanced logistic regression on
the two log-odds gives (w_classifier, w_judge, bias). Printed: the WEIGHTS entry, and the in-band
exemplars' accuracy for the classifier alone, the judge alone and the combination.

    .venv/bin/python benchmarks/calibrate_cascade.py --judge qwen-1.5b [--scores FILE] [--limit N]

``--scores FILE`` keeps the judge's P(yes) per exemplar text (JSON lines), so a second fit (other
band) re-judges only new texts.

``--probe`` fits the judge model's probe instead (probe.py) and writes it to
``guard/probes/harmful-<model hash>.json``: the hidden state of every exemplar (the worked-example
pairs left out) under the built-in input prompt, the probe by grouped 5-fold cross-validation on
all of them (the folds of ``harmful.oof_scores``), and its combination with the classifier
fitted on the in-band exemplars' out-of-fold scores of both. ``--cache DIR`` keeps the hidden
states (``bench_judge_probe.py`` reads the same files); with qwen-1.5b they take ~13 min.

    .venv/bin/python benchmarks/calibrate_cascade.py --judge qwen-1.5b --probe [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch
from _scratch import scratch_dir


def balanced_accuracy(flag: np.ndarray, y: np.ndarray) -> float:
    return float((flag[y == 1].mean() + (1 - flag[y == 0].mean())) / 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", default="qwen-1.5b")
    ap.add_argument("--band", default=None, help="low,high (default: harmful.DEFAULT_BAND)")
    ap.add_argument("--scores", default=None, help="JSON-lines cache of P(yes) per exemplar text")
    ap.add_argument("--limit", type=int, default=0, help="judge at most N in-band exemplars (a seeded sample)")
    ap.add_argument("--probe", action="store_true", help="fit and write the judge model's probe instead")
    ap.add_argument("--cache", default=None, help="folder that keeps the hidden states (--probe)")
    args = ap.parse_args()
    if args.probe:
        fit_probe(args.judge, args.band, Path(args.cache) if args.cache else None)
        return
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = str(scratch_dir("calibrate-cascade-"))
    from cellops.kernels_lib.guard.checks import harmful
    from cellops.kernels_lib.guard.checks.cascade import fit_weights, logit
    from cellops.kernels_lib.guard.checks.judge import EXAMPLE_PAIRS, LLMJudge
    from cellops.kernels_lib.guard.embed import TextCtx
    from cellops.kernels_lib.workspace import get_workspace

    low, high = map(float, args.band.split(",")) if args.band else harmful.DEFAULT_BAND
    rows, oof, y = harmful.oof_scores()
    idx = [i for i, r in enumerate(rows) if low <= oof[i] < high and r.get("pair") not in EXAMPLE_PAIRS]
    if args.limit and len(idx) > args.limit:
        idx = sorted(np.random.default_rng(0).choice(idx, args.limit, replace=False).tolist())
    print(f"{len(rows)} exemplars, {len(idx)} in band [{low}, {high}) judged "
          f"({int(y[idx].sum())} harmful, {int(len(idx) - y[idx].sum())} benign)", flush=True)
    cache: dict[str, float] = {}
    if args.scores and Path(args.scores).exists():
        cache = {d["text"]: d["p_yes"] for d in map(json.loads, Path(args.scores).read_text().splitlines())}
    judge = LLMJudge(LLMJudge.validate_options({"model": args.judge}, "calibrate"), 0.5, get_workspace())
    out = open(args.scores, "a") if args.scores else None  # noqa: SIM115 (closed below)
    t0, p = time.perf_counter(), []
    for n, i in enumerate(idx):
        text = rows[i]["text"]
        if text not in cache:
            cache[text] = judge.run(TextCtx(text, "input")).score
            if out:
                out.write(json.dumps({"text": text, "label": rows[i]["label"], "p_yes": cache[text]}) + "\n")
        p.append(cache[text])
        if n % 50 == 49:
            print(f"  {n + 1}/{len(idx)} judged, {time.perf_counter() - t0:.0f} s", flush=True)
    if out:
        out.close()
    s, pj, yy = oof[idx], np.array(p), y[idx]
    wc, wj, b = fit_weights(s, pj, yy)
    z = np.array([wc * logit(a) + wj * logit(c) + b for a, c in zip(s, pj, strict=True)])
    print(f"in-band balanced accuracy: classifier alone (>= {harmful.DEFAULT_THRESHOLD}) "
          f"{balanced_accuracy(s >= harmful.DEFAULT_THRESHOLD, yy):.3f}, judge alone (P >= 0.5) "
          f"{balanced_accuracy(pj >= 0.5, yy):.3f}, combined {balanced_accuracy(z >= 0, yy):.3f} (in-sample)")
    print(f'WEIGHTS[("harmful", "{judge.llm.weights_hash()}")] = ({wc:.3f}, {wj:.3f}, {b:.3f})  # {args.judge}')


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
    ws = get_workspace()
    judge = LLMJudge(LLMJudge.validate_options({"model": uri}, "calibrate"), 0.5, ws)
    x, ms = hidden_states(uri, [r["text"] for r in rows], "ex", ws, cache)
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
    p = probe.Probe("harmful", judge.llm.weights_hash(), probe.prompt_sha256(judge.messages("", "input")), w, b,
                    (float(wc[0]), float(wc[1]), c0),
                    {"model": uri, "l2": l2, "oof_auc": round(oof_auc, 4), "exemplars": int(len(y)),
                     "band": [low, high], "in_band": int(band_rows.sum()), "fitted": datetime.date.today().isoformat(),
                     "by": "benchmarks/calibrate_cascade.py --probe"})
    out = probe.path_for("harmful", p.model_sha256)
    out.parent.mkdir(exist_ok=True)
    out.write_text(p.to_json())
    print(f"wrote {out} (combine {p.combine[0]:.3f}, {p.combine[1]:.3f}, {p.combine[2]:.3f})")


if __name__ == "__main__":
    with LoadWatch():
        main()
