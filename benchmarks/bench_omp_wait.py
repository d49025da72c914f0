"""OMP_WAIT_POLICY=PASSIVE (set by ``import cellops``): does a torch call still slow the next
llama.cpp generate and ONNX Runtime embed in the same process?

Two arms, each in fresh processes, because an OpenMP runtime reads OMP_WAIT_POLICY once, when it
loads:
  before  the variable is unset when torch and llama.cpp load (cellops' default removed right
          after ``import cellops``, before anything heavy is imported)
  after   cellops' default, PASSIVE
Each process loads the embedded SmolLM2 (llama.cpp) and MiniLM (torch for bulk calls, ONNX Runtime
for up to 4 texts), warms both up, then repeats:
  torch call (a bulk embed of 64 texts, what %%rag build does) -> timed llama.cpp generate
  (the same prompt, greedy, 16 tokens) -> torch call -> timed ONNX embed of one query,
plus a generate with no torch call before it, and the torch call's own time (what PASSIVE may
cost torch itself), for reference. Both arms run the same calls from
the same cache state; processes alternate arms so both see the same machine; medians over all
repeats of all processes.

    .venv/bin/python benchmarks/bench_omp_wait.py [--rounds 3] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _load import LoadWatch
from _scratch import scratch_dir

TEXTS = [f"Passage {i}: the committee met on day {i} to review the quarterly budget and staffing."
         for i in range(64)]
MESSAGES = [{"role": "user", "content": "List three facts about the Moon."}]


def child(arm: str, repeats: int) -> None:
    import cellops  # noqa: F401 -- sets OMP_WAIT_POLICY=PASSIVE unless already set

    if arm == "before":
        os.environ.pop("OMP_WAIT_POLICY", None)  # nothing heavy is loaded yet
    os.environ.setdefault("CELLOPS_WANDB", "off")
    os.environ["CELLOPS_HOME"] = str(scratch_dir("bench_omp_"))
    from cellops.kernels_lib.models import GenParams, get_embedder, get_llm

    emb, llm = get_embedder("default"), get_llm("default")
    params = GenParams(max_tokens=16, temperature=0.0)
    for _ in range(2):  # load weights, open the ONNX graph, fill the prompt cache
        emb.encode(TEXTS)
        emb.encode(["warm up"])
        llm.generate(MESSAGES, params)
    out: dict[str, list[float]] = {"gen_after_torch": [], "onnx_after_torch": [], "gen_alone": [],
                                   "torch_embed_64": []}
    tokens = set()
    for _ in range(repeats):
        t = time.perf_counter()
        emb.encode(TEXTS)  # torch (its own cost is measured too: PASSIVE may slow torch itself)
        out["torch_embed_64"].append(time.perf_counter() - t)
        t = time.perf_counter()
        g = llm.generate(MESSAGES, params)
        out["gen_after_torch"].append(time.perf_counter() - t)
        tokens.add(g.completion_tokens)
        emb.encode(TEXTS)  # torch
        t = time.perf_counter()
        emb.encode(["what did the committee review?"])  # ONNX Runtime (a single text)
        out["onnx_after_torch"].append(time.perf_counter() - t)
        time.sleep(0.5)  # long enough for any spinning thread to have gone to sleep
        t = time.perf_counter()
        llm.generate(MESSAGES, params)
        out["gen_alone"].append(time.perf_counter() - t)
    print(json.dumps({"arm": arm, "env": os.environ.get("OMP_WAIT_POLICY"), "tokens": sorted(tokens), **out}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="processes per arm (alternating)")
    ap.add_argument("--repeats", type=int, default=10, help="timed repeats per process")
    ap.add_argument("--child", choices=("before", "after"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.repeats)
    watch = LoadWatch()  # after the child branch: a child's last stdout line is its result
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    got: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    tokens: dict[str, set[int]] = {"before": set(), "after": set()}
    for r in range(a.rounds):
        for arm in (("before", "after") if r % 2 == 0 else ("after", "before")):
            proc = subprocess.run([sys.executable, __file__, "--child", arm, "--repeats", str(a.repeats)],
                                  capture_output=True, text=True, env=env, timeout=900, check=True)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            tokens[arm].update(res.pop("tokens"))
            print(f"  round {r + 1} {arm:6} (OMP_WAIT_POLICY={res.pop('env')}, arm {res.pop('arm')})", flush=True)
            for key, values in res.items():
                got[arm].setdefault(key, []).extend(values)
                print(f"    {key:22} median {statistics.median(values) * 1000:8.1f} ms  (n={len(values)})", flush=True)
    watch.end()
    print(f"completion tokens per generate: before {sorted(tokens['before'])}, after {sorted(tokens['after'])}")
    print(f"{'median ms':28} {'before':>9} {'after':>9} {'change':>8}   (n per arm)")
    for key in got["before"]:
        b, p = statistics.median(got["before"][key]) * 1000, statistics.median(got["after"][key]) * 1000
        print(f"{key:28} {b:9.1f} {p:9.1f} {100 * (p - b) / b:+7.1f}%   ({len(got['before'][key])})")


if __name__ == "__main__":
    main()
