"""Guard cascade on the dev guard set: the harmful + injection classifiers alone vs the same checks
sending their uncertain band (calibrated on the exemplars, not on this set) to llm_judge.

Figures per arm and half: recall on harmful rows, benign FPR, p50 / p95 latency per input over
all inputs, and the share of inputs sent to the judge. Half ``a`` is the first half of every
(label, JailbreakBench category) group, the half used for development; half ``b`` the other,
held back (``--split`` runs one half only). Then the last arm's errors by category. ``--dump
FILE`` writes one JSON line per row and arm (scores, P(yes), decision).

    .venv/bin/python benchmarks/bench_cascade.py [--judge qwen-1.5b,qwen-0.5b] [--split b]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _load import LoadWatch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
POLICY = """input:
  - check: injection
    action: block{extra}
  - check: harmful
    action: block{extra}
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
                         "p_yes": f.detail.get("judge", {}).get("p_yes")} for f in rep.findings}})
    return out


def summary(records: list[dict]) -> dict[str, float]:
    y = np.array([r["label"] != "benign" for r in records])
    f = np.array([r["flagged"] for r in records])
    lat = [r["ms"] for r in records]
    return {"recall": float(f[y].mean()), "benign_fpr": float(f[~y].mean()),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "judged_share": float(np.mean([r["judged"] for r in records])), "n": float(len(records))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", default="qwen-1.5b", help="comma-separated model URIs of the judges")
    ap.add_argument("--split", choices=("a", "b", "all"), default="all")
    ap.add_argument("--band", default=None, help="low,high: override both checks' bands (exploration only)")
    ap.add_argument("--dump", default=None, help="write per-row JSON lines here")
    args = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = tempfile.mkdtemp(prefix="bench-cascade-")
    from cellops.kernels_lib.workspace import get_workspace

    ws = get_workspace()
    rows = dev_rows(args.split)
    print(f"{len(rows)} rows (split {args.split})", flush=True)
    band = f"\n    band: [{args.band}]" if args.band else ""
    arms = [("classifier alone", arm("classifier", POLICY.format(extra=""), rows, ws))]
    for judge in filter(None, args.judge.split(",")):
        extra = f"\n    judge: true\n    judge_model: {judge}{band}"
        arms.append((f"cascade ({judge})", arm(judge, POLICY.format(extra=extra), rows, ws)))
        print(f"{judge} done", flush=True)
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(r) + "\n" for _, recs in arms for r in recs))
    halves = ["a", "b", "all"] if args.split == "all" else [args.split]
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
