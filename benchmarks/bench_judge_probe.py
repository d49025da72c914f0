"""The shipped probes on the judge model's hidden state (guard/checks/probe.py), against the harmful
classifier, on the dev guard set, threshold-free.

A probe is fitted on the harmful check's exemplars only (``calibrate_cascade.py --judge
MODEL``); here it scores the 200 dev rows: ``LlamaCppModel.hidden_state`` on the judge's
built-in input-rail messages, then the probe's logit, and the probe + classifier combination the
cascade uses in its band (``w_c * logit(classifier) + w_p * probe + b``, applied here to every
row). The judge's own P(yes) on the same rows is ``bench_cascade.py --roc``; the cascade's
decisions are ``bench_cascade.py``.

Printed per model, AUC / recall at 5% benign FPR on half a (developed on), half b (held back) and
all 200 rows, and ms per text. ``--cache DIR`` keeps the hidden states (``<model>-dev-<hash of
the texts>.npy``; the exemplars' ``<model>-ex-<hash>.npy`` are calibrate_cascade's).

    .venv/bin/python benchmarks/bench_judge_probe.py --judge qwen-1.5b [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch
from _scratch import scratch_dir
from bench_cascade import dev_rows


def hidden_states(judge, texts: list[str], name: str, cache: Path | None) -> tuple[np.ndarray, float]:
    """The ``LLMJudge``'s built-in input prompt's last-token hidden state for each text, and ms per
    text (0 when cached)."""
    uri = judge.model
    # keyed by the texts too: a changed exemplar or dev file is never scored from a stale cache
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    f = cache / f"{uri}-{name}-{key}.npy" if cache else None
    if f is not None and f.exists():
        return np.load(f), 0.0
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
    from cellops.kernels_lib.guard.checks import harmful, probe
    from cellops.kernels_lib.guard.checks.cascade import logit
    from cellops.kernels_lib.guard.checks.judge import LLMJudge
    from cellops.kernels_lib.guard.embed import TextCtx
    from cellops.kernels_lib.workspace import Workspace

    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    ws = Workspace(scratch_dir("bench-probe-") / ".cellops")
    dev = dev_rows("all")
    dy = np.array([r["label"] == "harmful" for r in dev], dtype=float)
    half = np.array([r["half"] for r in dev])
    check = harmful.Harmful(harmful.Harmful.validate_options({}, "bench"), harmful.DEFAULT_THRESHOLD, ws)
    dc = np.array([check.run(TextCtx(r["text"], "input")).score for r in dev])
    out = ["| arm | half a | half b (held back) | all 200 |", "|---|---|---|---|",
           line("classifier (base encoder)", dc, dy, half)]
    for uri in args.judge.split(","):
        judge = LLMJudge(LLMJudge.validate_options({"model": uri}, "bench"), 0.5, ws)
        pr = probe.for_judge("harmful", judge)
        if pr is None:
            raise SystemExit(f"{uri}: no shipped probe for this model and prompt; fit one with "
                             f"benchmarks/calibrate_cascade.py --judge {uri}")
        d, ms_dev = hidden_states(judge, [r["text"] for r in dev], "dev", cache)
        dp = d @ pr.w + pr.b
        wc, wp, c0 = pr.combine
        comb = wc * np.array([logit(float(p)) for p in dc]) + wp * dp + c0
        cost = f", {ms_dev:.0f} ms per text" if ms_dev else ""
        m = pr.meta
        out += [line(f"{uri} probe (L2 {m.get('l2')}, exemplar OOF AUC {m.get('oof_auc')}{cost})", dp, dy, half),
                line(f"{uri} probe + classifier, in-band weights ({wc:.2f}, {wp:.2f}, {c0:.2f})", comb, dy, half)]
    print("\nAUC / recall at 5% benign FPR on the dev guard set")
    print("\n".join(out))


if __name__ == "__main__":
    with LoadWatch():
        main()
