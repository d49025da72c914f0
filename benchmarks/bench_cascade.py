"""Guard cascade on the dev guard set: the harmful + injection classifiers alone vs the same checks
sending their uncertain band (calibrated on the exemplars, not on this set) to llm_judge.

Figures per arm: recall on harmful rows, benign FPR, p50 / p95 latency per input over all
inputs, and the share of inputs sent to the judge.

    .venv/bin/python benchmarks/bench_cascade.py [--judge qwen-1.5b] [--limit 200]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
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


def arm(policy: str, rows: list[dict], ws) -> dict[str, float]:
    from cellops.kernels_lib import guard

    pol = guard.load(policy, ws)
    pol.check_input("warm-up call")
    lat, flagged, judged = [], [], []
    for r in rows:
        t0 = time.perf_counter()
        rep = pol.check_input(r["text"])
        lat.append((time.perf_counter() - t0) * 1000)
        flagged.append(not rep.allowed)
        judged.append(any("judge" in f.detail for f in rep.findings))
    y = np.array([r["label"] != "benign" for r in rows])
    f = np.array(flagged)
    return {"recall": float(f[y].mean()), "benign_fpr": float(f[~y].mean()),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "judged_share": float(np.mean(judged))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", default="qwen-1.5b", help="model URI of the judge")
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = tempfile.mkdtemp(prefix="bench-cascade-")
    from cellops.kernels_lib.workspace import get_workspace

    ws = get_workspace()
    lines = (SHARED / "guard" / "harmful_benign_dev.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines if x.strip()]
    rows = rows[: args.limit // 2] + rows[100: 100 + args.limit // 2]  # harmful and benign halves
    print(f"{len(rows)} rows")
    alone = arm(POLICY.format(extra=""), rows, ws)
    cascade = arm(POLICY.format(extra=f"\n    judge: true\n    judge_model: {args.judge}"), rows, ws)
    print(f"\n{'arm':28} {'recall':>7} {'benignFPR':>9} {'p50 ms':>7} {'p95 ms':>8} {'judged':>7}")
    for name, m in (("classifier alone", alone), (f"cascade ({args.judge})", cascade)):
        print(f"{name:28} {m['recall']:7.3f} {m['benign_fpr']:9.3f} {m['p50_ms']:7.1f} {m['p95_ms']:8.1f} "
              f"{m['judged_share']:7.1%}")


if __name__ == "__main__":
    with LoadWatch():
        main()
