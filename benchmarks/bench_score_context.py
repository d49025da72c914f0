"""What the llama.cpp scoring context saves (models/llamacpp_score.py), against a checkout without it.

One model answers and judges, as when ``Cellops.answer_model`` and ``judge_model`` are the same:
  warm    ``Policy.warm()`` of a policy whose harmful and injection checks both send their band to
          the judge (the probe's hidden state and the injection judge's P(yes) share the policy +
          worked-examples start): seconds, once per process (``cellops serve`` pays it at startup)
  round   one answer to a question about the same ~500-token context (16 tokens, greedy), then the
          output rail's ``llm_judge`` on that answer: seconds per round, median of rounds 2..N
          (round 1 fills the caches). Where answers and judges share one context, each round
          evaluates the answer's context and the judge's prompt again.

Compare like with like: run this file from each checkout in turn, alternating, in fresh
processes, after one untimed run so the model file is in the page cache for both:

    for i in 1 2 3; do for src in /path/to/old /path/to/new; do
      .venv/bin/python benchmarks/bench_score_context.py --judge qwen-0.5b --src $src; done; done

``--src DIR`` imports cellops from DIR/src (the other checkout's code, this file's scenario).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _load import LoadWatch

HERE = Path(__file__).resolve().parents[1]
QUESTIONS = ["What does the scoring context keep?", "Which mode computes every token's logits?",
             "How are prompts evaluated?", "What is reused between calls?", "Why two contexts?"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge", default="qwen-0.5b", help="model URI that answers and judges")
    ap.add_argument("--src", default=str(HERE), help="checkout whose cellops to import")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    sys.path.insert(0, str(Path(a.src) / "src"))
    from cellops.kernels_lib import guard
    from cellops.kernels_lib.models import GenParams, get_llm

    m = a.judge
    pol = guard.load(f"input:\n  - check: harmful\n    judge: true\n    judge_model: {m}\n"
                     f"  - check: injection\n    judge: true\n    judge_model: {m}\n"
                     f"output:\n  - check: llm_judge\n    model: {m}\n")
    llm = get_llm(m)
    t0 = time.perf_counter()
    pol.warm()
    warm = time.perf_counter() - t0
    context = (HERE / "docs" / "internals.md").read_text()[:2200]  # ~500 tokens of real prose
    rounds = []
    for q in (QUESTIONS * a.rounds)[: a.rounds]:
        msgs = [{"role": "system", "content": "Answer from the context only.\n\nContext:\n" + context},
                {"role": "user", "content": q}]
        t0 = time.perf_counter()
        answer = llm.generate(msgs, GenParams(max_tokens=16, temperature=0.0)).text
        pol.check_output(answer, [context])
        rounds.append(time.perf_counter() - t0)
    print(f"{m} src={a.src}: warm {warm:.2f} s, round median {statistics.median(rounds[1:]):.2f} s "
          f"(rounds {', '.join(f'{r:.2f}' for r in rounds)})")


if __name__ == "__main__":
    with LoadWatch():
        main()
