"""Guard overhead, measured in one process against a baseline run in the same process.

1. A %%prompt-style call (prompts.run, embedded SmolLM2, greedy, fixed max_tokens) with the
   `default` policy on vs the same call with guard off, interleaved so both see the same machine.
   The questions hold nothing the policy changes, so both arms send the same prompt and get the
   same greedy answer (the token counts are printed per arm and must match): the difference is
   the guard's own work.
2. The non-LLM checks alone: per-input latency (p50/p95) of the default policy's input rail on
   the dev sets when present (../shared/data), else on the project's own exemplars, with the
   per-check breakdown (embedding shared by all embedding checks).

    .venv/bin/python benchmarks/bench_guard.py [--calls 24] [--max-tokens 48] [--inputs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch
from _scratch import scratch_dir

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _inputs(n: int) -> list[str]:
    files = [SHARED / "guard" / "harmful_benign_dev.jsonl", SHARED / "pii" / "presidio_generated_small.jsonl"]
    if not all(f.exists() for f in files):
        from cellops.kernels_lib.guard.embed import EXEMPLAR_DIR

        files = sorted(EXEMPLAR_DIR.glob("*.jsonl"))
    texts = [json.loads(x)["text"] for f in files for x in f.read_text().splitlines() if x.strip()]
    return texts[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=24)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--inputs", type=int, default=300)
    a = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = str(scratch_dir("bench_guard_"))
    from cellops.kernels_lib import guard, prompts
    from cellops.kernels_lib.models import generate
    from cellops.kernels_lib.workspace import get_workspace

    ws = get_workspace()
    t0 = time.perf_counter()
    pol = guard.load("default", ws)
    print(f"policy load (exemplar embeddings + classifier + presidio, cold): {time.perf_counter() - t0:.2f} s")
    prompts.save("bench", "Answer briefly. {{ q }}", params={"max_tokens": a.max_tokens}, workspace=ws)
    qs = ["What is the capital of France?", "Name three primary colors.", "How do plants make food?"]
    for guarded in (False, True):  # load the model, and the guard's ONNX session, before timing
        guard.on("default", ws) if guarded else guard.off(ws)
        prompts.run("bench", {"q": "warm up"}, workspace=ws, cache=False)
    off, on, diffs, tokens = [], [], [], {False: [], True: []}
    for i in range(a.calls):
        q = qs[i % len(qs)]
        pair = {}
        for guarded in ((False, True) if i % 2 == 0 else (True, False)):
            guard.on("default", ws) if guarded else guard.off(ws)
            # an unrelated call first: the model's prompt cache is then in the same state for both
            # arms (only the chat header is shared), not warm with the other arm's identical prompt
            generate("Say ok.", max_tokens=1, workspace=ws)
            t = time.perf_counter()
            r = prompts.run("bench", {"q": q}, workspace=ws, cache=False)  # time the model, not the cache
            pair[guarded] = time.perf_counter() - t
            (on if guarded else off).append(pair[guarded])
            tokens[guarded].append(r.generation.completion_tokens if r.generation else 0)
        diffs.append(pair[True] - pair[False])
    guard.off(ws)
    b, g, d = statistics.median(off), statistics.median(on), statistics.median(diffs)
    same = ("same answer lengths" if sorted(tokens[False]) == sorted(tokens[True])
            else f"ANSWER LENGTHS DIFFER: {tokens[False]} vs {tokens[True]}")
    print(f"%%prompt call, {a.calls} pairs (max_tokens={a.max_tokens}, ~{statistics.mean(tokens[False]):.0f} "
          f"tokens, {same}):")
    print(f"  guard off (baseline): median {b * 1000:8.1f} ms   1.00x")
    print(f"  guard on  (default) : median {g * 1000:8.1f} ms   {g / b:.2f}x")
    print(f"  median paired difference (on - off, same question back to back): {d * 1000:+.1f} ms "
          f"= {d / b * 100:+.1f}% of a call")

    texts = _inputs(a.inputs)
    for t in texts[:5]:
        pol.check_input(t + " warm")
    total, per = [], {}
    for t in texts:
        t1 = time.perf_counter()
        rep = pol.check_input(t)
        total.append((time.perf_counter() - t1) * 1000)
        for k, v in rep.latency_ms.items():
            per.setdefault(k, []).append(v)
    p50, p95 = np.percentile(total, 50), np.percentile(total, 95)
    print(f"default input rail alone on {len(texts)} inputs: p50 {p50:.2f} ms  p95 {p95:.2f} ms "
          f"({p50 / (b * 1000):.4f}x of one baseline call)")
    for k, v in sorted(per.items(), key=lambda kv: -np.median(kv[1])):
        print(f"  {k:10s} p50 {np.percentile(v, 50):7.2f} ms  p95 {np.percentile(v, 95):7.2f} ms")


if __name__ == "__main__":
    with LoadWatch():
        main()
