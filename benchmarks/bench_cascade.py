"""Guard cascade on the dev guard set: the harmful + injection classifiers alone vs the same checks
sending their uncertain band (calibrated on the exemplars, not on this set) to llm_judge.

Figures per arm and half: recall on harmful rows, benign FPR, p50 / p95 latency per input over
all inputs, and the share of inputs sent to the judge. Half ``a`` is the first half of every
(label, JailbreakBench category) group, the half used for development; half ``b`` the other,
held back (``--split`` runs one half only). Then the last arm's errors by category. ``--dump
FILE`` writes one JSON line per row and arm (scores, P(yes), decision).

``--roc`` first asks where the ranking stands, threshold-free: every row is judged (not only the
band) and AUC and recall at 5% benign FPR are printed for the classifier and the judge's P(yes)
(the shipped probes: ``bench_judge_probe.py``). If no ranking reaches the target recall at 5%
FPR, no band or threshold will. ``--cache FILE`` keeps P(yes) per
(model, prompt, text), so a rerun judges only new texts.

A judge model that ships a probe for the harmful check (probe.py, e.g. qwen-1.5b) decides the
harmful band with it; the injection band still goes to P(yes).

``--encoder tuned`` runs the harmful check on its fine-tuned encoder (tuned_encoder.py) in every
arm; the probes' combinations were fitted on the base classifier's scores, so a tuned
classifier's judge decides the band alone (P(yes) >= 0.5).

    .venv/bin/python benchmarks/bench_cascade.py [--judge qwen-1.5b,qwen-0.5b] [--split b] [--roc] [--encoder tuned]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _load import LoadWatch
from _scratch import scratch_dir

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
POLICY = """input:
  - check: injection
    action: block{extra}
  - check: harmful
    action: block{extra}{encoder}
"""


def dev_rows(split: str) -> list[dict]:
    """The dev rows of ``split``: a = the first half of each (label, category) group, b = the rest."""
    lines = (SHARED / "guard" / "harmful_benign_dev.jsonl").read_text().splitlines()
    rows, seen = [], Counter()
    for i, line in enumerate(x for x in lines if x.strip()):
        r = json.loads(line) | {"row": i}
        group = (r["label"], r["category"])
        seen[group] += 1
        r["half"] = "a" if seen[group] <= 5 else "b"
        rows.append(r)
    return [r for r in rows if split == "all" or r["half"] == split]


def arm(name: str, policy: str, rows: list[dict], ws) -> list[dict]:
    """One record per row: the decision, latency, whether the judge ran, and the checks' scores."""
    from cellops.kernels_lib import guard
    from cellops.kernels_lib.guard.embed import forget_texts

    pol = guard.load(policy, ws)
    pol.check_input("warm-up call")
    forget_texts()  # every arm embeds every row itself: the same cache state in each arm
    out = []
    for r in rows:
        t0 = time.perf_counter()
        rep = pol.check_input(r["text"])
        ms = (time.perf_counter() - t0) * 1000
        out.append({
            "arm": name, "row": r["row"], "half": r["half"], "label": r["label"], "category": r["category"],
            "flagged": not rep.allowed, "ms": round(ms, 2), "judged": any("judge" in f.detail for f in rep.findings),
            **{f.check: {"score": round(f.score, 4), "triggered": f.triggered,
                         "classifier": f.detail.get("classifier_score"),
                         "p_yes": f.detail.get("judge", {}).get("p_yes"),
                         "probe_logit": f.detail.get("judge", {}).get("probe_logit")} for f in rep.findings}})
    return out


def summary(records: list[dict]) -> dict[str, float]:
    y = np.array([r["label"] != "benign" for r in records])
    f = np.array([r["flagged"] for r in records])
    lat = [r["ms"] for r in records]
    return {"recall": float(f[y].mean()), "benign_fpr": float(f[~y].mean()),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "judged_share": float(np.mean([r["judged"] for r in records])), "n": float(len(records))}


def judge_all(judge_uri: str, rows: list[dict], ws, cache: Path | None) -> np.ndarray:
    """P(yes) of every row (built-in input prompt)."""
    from cellops.kernels_lib.guard.checks.judge import LLMJudge
    from cellops.kernels_lib.guard.embed import TextCtx

    judge = LLMJudge(LLMJudge.validate_options({"model": judge_uri}, "bench"), 0.5, ws)
    prompt = hashlib.sha256(json.dumps(judge.messages("", "input")).encode()).hexdigest()[:16]
    model = judge.llm.weights_hash()
    seen = {}
    if cache and cache.exists():
        for d in map(json.loads, cache.read_text().splitlines()):
            seen[(d["model"], d["prompt"], d["text"])] = d["p_yes"]
    with open(cache, "a") if cache else open(os.devnull, "w") as out:
        for r in rows:
            key = (model, prompt, r["text"])
            if key not in seen:
                seen[key] = judge.run(TextCtx(r["text"], "input")).score
                out.write(json.dumps({"model": model, "prompt": prompt, "text": r["text"], "p_yes": seen[key]}) + "\n")
                out.flush()
    return np.array([seen[(model, prompt, r["text"])] for r in rows])


def roc(judges: list[str], rows: list[dict], classifier: list[dict], ws, cache: Path | None, halves: list[str]) -> None:
    """Threshold-free: AUC and recall at 5% benign FPR per ranking and half."""
    from cellops.kernels_lib.guard.checks.cascade import logit
    from cellops.kernels_lib.guard.ranking import auc, recall_at_fpr

    lc = np.array([logit(r["harmful"]["score"]) for r in classifier])
    ranks = {"classifier": lc}
    for uri in judges:
        ranks[f"judge {uri}"] = np.array([logit(x) for x in judge_all(uri, rows, ws, cache)])
        print(f"{uri}: all rows judged", flush=True)
    print(f"\n{'ranking':40} {'split':>5} {'AUC':>6} {'recall@5%FPR':>13}")
    for name, score in ranks.items():
        for h in halves:
            m = np.array([h == "all" or r["half"] == h for r in rows])
            y = np.array([r["label"] != "benign" for r in rows])[m]
            print(f"{name:40} {h:>5} {auc(score[m], y):6.3f} {recall_at_fpr(score[m], y):13.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", default="qwen-1.5b", help="comma-separated model URIs of the judges")
    ap.add_argument("--split", choices=("a", "b", "all"), default="all")
    ap.add_argument("--encoder", choices=("base", "tuned"), default="base", help="the harmful check's encoder")
    ap.add_argument("--band", default=None, help="low,high: override both checks' bands (exploration only)")
    ap.add_argument("--dump", default=None, help="write per-row JSON lines here")
    ap.add_argument("--roc", action="store_true", help="judge every row: threshold-free AUC, recall at 5%% FPR")
    ap.add_argument("--cache", default=None, help="JSON-lines cache of P(yes) per model, prompt and text (--roc)")
    args = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = str(scratch_dir("bench-cascade-"))
    from cellops.kernels_lib.workspace import get_workspace

    ws = get_workspace()
    rows = dev_rows(args.split)
    print(f"{len(rows)} rows (split {args.split})", flush=True)
    band = f"\n    band: [{args.band}]" if args.band else ""
    enc = f"\n    encoder: {args.encoder}"
    arms = [("classifier alone", arm("classifier", POLICY.format(extra="", encoder=enc), rows, ws))]
    halves = ["a", "b", "all"] if args.split == "all" else [args.split]
    if args.roc:
        roc(list(filter(None, args.judge.split(","))), rows, arms[0][1], ws, args.cache and Path(args.cache), halves)
        return
    for judge in filter(None, args.judge.split(",")):
        extra = f"\n    judge: true\n    judge_model: {judge}{band}"
        arms.append((f"cascade ({judge})", arm(judge, POLICY.format(extra=extra, encoder=enc), rows, ws)))
        print(f"{judge} done", flush=True)
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(r) + "\n" for _, recs in arms for r in recs))
    print(f"\n{'arm':28} {'split':>5} {'n':>4} {'recall':>7} {'benignFPR':>9} {'p50 ms':>7} {'p95 ms':>8} {'judged':>7}")
    for name, recs in arms:
        for h in halves:
            m = summary([r for r in recs if h == "all" or r["half"] == h])
            print(f"{name:28} {h:>5} {m['n']:4.0f} {m['recall']:7.3f} {m['benign_fpr']:9.3f} {m['p50_ms']:7.1f} "
                  f"{m['p95_ms']:8.1f} {m['judged_share']:7.1%}")
    misses = Counter((r["category"], r["label"]) for r in arms[-1][1] if r["flagged"] != (r["label"] != "benign"))
    print(f"\nerrors of '{arms[-1][0]}' by category (missed harmful / flagged benign):")
    for cat in sorted({c for c, _ in misses}):
        print(f"  {cat:28} {misses[(cat, 'harmful')]:3d} / {misses[(cat, 'benign')]:3d}")


if __name__ == "__main__":
    with LoadWatch():
        main()
