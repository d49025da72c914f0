"""A linear probe on the judge model's hidden state, against the harmful classifier, on the dev
guard set: a measured lever for issue 18's cascade, not yet wired into it.

The cascade's judge reads P(yes) off the next-token logits after its prompt; those logits are one
fixed linear map of the model's final hidden state at the last token. A probe learns its own
linear map of that same state, from the harmful check's exemplars (never from the dev set):
``LlamaCppModel.hidden_state`` on the judge's built-in input-rail messages (policy, worked
examples, the request), standardised, then class-balanced logistic regression. Its L2 is chosen
by the out-of-fold AUC of grouped 5-fold cross-validation on the exemplars (a contrastive pair
stays in one fold, the folds of ``harmful.oof_scores``), and the probe + classifier combination
(``w_c * logit(classifier) + w_p * probe + b``) is fitted on the exemplars' out-of-fold scores.

Printed per model, AUC / recall at 5% benign FPR on half a (developed on), half b (held back) and
all 200 rows: the base classifier, the probe, and the combination; and ms per text. The judge's
own P(yes) on the same rows is ``bench_cascade.py --roc``.

``--cache DIR`` keeps the hidden states (``<model>-dev.npy``, ``<model>-ex.npy``): the exemplars
take ~10 min with qwen-0.5b and ~30 min with qwen-1.5b on 2 cores.

    .venv/bin/python benchmarks/bench_judge_probe.py --judge qwen-1.5b [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch
from _scratch import scratch_dir
from bench_cascade import dev_rows

L2S = (3e-3, 1e-2, 3e-2, 1e-1, 3e-1)  # candidate L2 strengths of the probe


def hidden_states(uri: str, texts: list[str], name: str, ws, cache: Path | None) -> tuple[np.ndarray, float]:
    """The judge prompt's last-token hidden state for each text, and ms per text (0 when cached)."""
    from cellops.kernels_lib.guard.checks.judge import LLMJudge

    f = cache / f"{uri}-{name}.npy" if cache else None
    if f is not None and f.exists():
        return np.load(f), 0.0
    judge = LLMJudge(LLMJudge.validate_options({"model": uri}, "bench"), 0.5, ws)
    t0, out = time.perf_counter(), []
    for i, t in enumerate(texts):
        out.append(judge.llm.hidden_state(judge.messages(t, "input")))
        if i % 200 == 0:
            print(f"  {uri} {name}: {i} / {len(texts)}", flush=True)
    ms = (time.perf_counter() - t0) * 1000 / max(len(texts), 1)
    m = np.stack(out)
    if f is not None:
        np.save(f, m)
    return m, ms


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(0), train.std(0) + 1e-6
    return [(x - mu) / sd for x in (train, *others)]


def fit_probe(x: np.ndarray, y: np.ndarray, fold: np.ndarray) -> tuple[float, np.ndarray, float]:
    """(chosen L2, out-of-fold probe logits, their AUC) by grouped cross-validation on the exemplars."""
    from cellops.kernels_lib.guard.embed import train_logreg
    from cellops.kernels_lib.guard.ranking import auc

    best = None
    for l2 in L2S:
        oof = np.zeros(len(y))
        for k in range(int(fold.max()) + 1):
            tr, te = fold != k, fold == k
            a, b = standardise(x[tr], x[te])
            w, b0 = train_logreg(a, y[tr], l2=l2, iters=1500)
            oof[te] = b @ w + b0
        score = auc(oof, y == 1)
        print(f"  L2 {l2:g}: exemplar out-of-fold AUC {score:.3f}", flush=True)
        if best is None or score > best[2]:
            best = (l2, oof, score)
    return best


def line(name: str, s: np.ndarray, y: np.ndarray, half: np.ndarray) -> str:
    from cellops.kernels_lib.guard.ranking import auc, fpr_cut

    cells = []
    for h in ("a", "b", "all"):
        m = np.ones(len(s), bool) if h == "all" else half == h
        thr = fpr_cut(s[m & (y == 0)], 0.05)
        cells.append(f"{auc(s[m], y[m] == 1):.3f} / {np.mean(s[m & (y == 1)] > thr):.2f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", default="qwen-1.5b", help="comma-separated llama.cpp model URIs")
    ap.add_argument("--cache", default=None, help="folder that keeps the hidden states")
    args = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    from cellops.kernels_lib.guard.checks import harmful
    from cellops.kernels_lib.guard.checks.cascade import logit
    from cellops.kernels_lib.guard.embed import TextCtx, train_logreg
    from cellops.kernels_lib.workspace import Workspace

    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    ws = Workspace(scratch_dir("bench-probe-") / ".cellops")
    rows, oof_c, y = harmful.oof_scores()
    fold = harmful.grouped_folds(rows)  # the folds of oof_scores
    dev = dev_rows("all")
    dy = np.array([r["label"] == "harmful" for r in dev], dtype=float)
    half = np.array([r["half"] for r in dev])
    check = harmful.Harmful(harmful.Harmful.validate_options({}, "bench"), harmful.DEFAULT_THRESHOLD, ws)
    dc = np.array([check.run(TextCtx(r["text"], "input")).score for r in dev])
    out = ["| arm | half a | half b (held back) | all 200 |", "|---|---|---|---|",
           line("classifier (base encoder)", dc, dy, half)]
    for uri in args.judge.split(","):
        d, ms_dev = hidden_states(uri, [r["text"] for r in dev], "dev", ws, cache)
        x, _ = hidden_states(uri, [r["text"] for r in rows], "ex", ws, cache)
        l2, oof_p, oof_auc = fit_probe(x, y, fold)
        xs, ds = standardise(x, d)
        w, b = train_logreg(xs, y, l2=l2, iters=1500)
        dp = ds @ w + b
        lc = np.array([logit(float(p)) for p in oof_c])
        wc, c0 = train_logreg(np.c_[lc, oof_p], y, l2=1e-3, iters=2000)
        comb = np.c_[[logit(float(p)) for p in dc], dp] @ wc + c0
        cost = f", {ms_dev:.0f} ms per text" if ms_dev else ""
        out += [line(f"{uri} probe (L2 {l2:g}, exemplar OOF AUC {oof_auc:.3f}{cost})", dp, dy, half),
                line(f"{uri} probe + classifier ({wc[0]:.2f}, {wc[1]:.2f}, {c0:.2f})", comb, dy, half)]
    print("\nAUC / recall at 5% benign FPR on the dev guard set")
    print("\n".join(out))


if __name__ == "__main__":
    with LoadWatch():
        main()
