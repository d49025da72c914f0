"""Benchmark: prompt optimization on PubMedQA's yes/no/maybe decisions with the embedded SmolLM2.

Cases: the first N rows of ../shared/data/rag/pubmedqa_dev.jsonl (question + the abstract's
sections, cut to --context-chars), each asserting that the answer starts with the expert decision
(regex ``(?i)^\\W*yes\\b`` ...). The original prompt asks for yes, no or maybe; ``optimize`` searches
system prompts, few-shot demonstrations and parameters within --budget model calls, scored on the
train split, reported on the held-out split (both the original and the optimized version).

    .venv/bin/python benchmarks/bench_optimize.py [--n 40 --budget 160 --holdout 0.3] [--model URI]
    .venv/bin/python benchmarks/bench_optimize.py --task capitals --budget 36   # the suite's task

``--task capitals`` is the suite's small task (7 countries, "What is the capital of X?", the answer
must contain the capital and stay under 40 characters, max_tokens 40), measured the same way.

A single run (the search is seeded; answers are greedy unless a trial samples with its seed).
The machine is shared: the load average at start and end is printed, and above 1.5 (benchmarks/_load.py) the
run is marked noisy (time only; scores do not depend on load).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _load import LoadWatch
from _scratch import scratch_dir

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rag" / "pubmedqa_dev.jsonl"
TEMPLATE = "Context: {{context}}\n\nQuestion: {{question}}\nAnswer yes, no or maybe."


def cases(n: int, context_chars: int) -> list[dict]:
    rows = [json.loads(ln) for ln in DATA.read_text().splitlines()[:n]]
    return [{"vars": {"question": r["question"], "context": " ".join(r["contexts"])[:context_chars]},
             "assert": [{"type": "regex", "value": rf"(?i)^\W*{r['decision']}\b"}],
             "description": f"pmid {r['id']} ({r['decision']})"} for r in rows]


CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Egypt", "Cairo"),
            ("Spain", "Madrid"), ("Germany", "Berlin"), ("Russia", "Moscow")]  # as tests/.../test_prompt_optimize.py


def capital_cases() -> list[dict]:
    return [{"vars": {"country": c}, "assert": [{"type": "icontains", "value": a}, {"type": "max-length", "value": 40}],
             "description": f"{c} ({a})"} for c, a in CAPITALS]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=("pubmedqa", "capitals"), default="pubmedqa")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--budget", type=int, default=160)
    ap.add_argument("--holdout", type=float, default=0.3)
    ap.add_argument("--context-chars", type=int, default=700)
    ap.add_argument("--search", default="system,fewshot,params")
    ap.add_argument("--model", default="default", help="model URI of the prompt (default: embedded llama.cpp)")
    a = ap.parse_args()
    if a.task == "pubmedqa" and not DATA.is_file():
        raise SystemExit(f"{DATA} is not present (dev data lives outside the repo)")
    os.environ.setdefault("CELLOPS_HOME", str(scratch_dir("bench_optimize_") / ".cellops"))
    os.environ.setdefault("CELLOPS_WANDB", "off")
    from cellops.kernels_lib import prompts

    if a.task == "capitals":
        prompts.save("cap", "What is the capital of {{country}}?", params={"max_tokens": 40, "model": a.model})
        name, c = "cap", capital_cases()
    else:
        prompts.save("pubmedqa", TEMPLATE, params={"max_tokens": 16, "model": a.model})
        name, c = "pubmedqa", cases(a.n, a.context_chars)
        decisions = [x["description"].rsplit("(", 1)[1].rstrip(")") for x in c]
        print(f"{len(c)} cases: " + ", ".join(f"{d} {decisions.count(d)}" for d in ("yes", "no", "maybe")))
    t0 = time.perf_counter()
    r = prompts.optimize(name, c, search=a.search, budget=a.budget, holdout=a.holdout)
    print(r._repr_mimebundle_()["text/plain"])
    print(f"\nscores: original {r.baseline_train:.3f} train / {r.baseline_score:.3f} held-out -> {r.version} "
          f"{r.train_score:.3f} train / {r.score:.3f} held-out ({r.n_train} train / {r.n_holdout} held-out "
          f"cases; {r.used['calls']} of {a.budget} calls, {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    with LoadWatch():
        main()
