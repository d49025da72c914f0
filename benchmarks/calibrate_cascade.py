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
    args = ap.parse_args()
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


if __name__ == "__main__":
    with LoadWatch():
        main()
