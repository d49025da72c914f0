"""Answer quality per installed model: ``%%rag ask`` on PubMedQA dev (the abstracts as the corpus)
and each model as the guard judge on the dev guard set.

Per model: token F1 of the answer against ``long_answer``, yes/no/maybe accuracy (the prompt asks
for the decision first), citation precision (share of cited passages that come from the question's
own abstract), groundedness (share of the answer's content words found in its passages),
tokens/s of generation, and the AUC of P(yes) from the judge prompt (next-token probabilities,
no sampling) on harmful vs benign dev requests. Same questions, passages, prompt, greedy decoding
and max_tokens for every model.

    .venv/bin/python benchmarks/bench_answers.py [--questions 40] [--guard-rows 100] [--max-tokens 80]

The questions are the first N rows of PubMedQA dev (in file order); the index holds all 300
abstracts, each whole (bench_rag_modes.py's first version: every question's own abstract is
retrieved first by dense search almost always, so this measures answering, not retrieval). The
guard rows are the first half of the harmful and the first half of the benign dev rows (matched
pairs on the same topics). Prints a Markdown table for docs/rag.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SYSTEM = ("You answer biomedical questions using only the numbered sources. Start with one word, "
          "yes, no or maybe, then give the conclusion in one or two sentences citing sources as [n].")
TEMPLATE = """Sources:
{% for p in passages %}[{{ p.n }}] {{ p.text }}
{% endfor %}
Question: {{ question }}
Answer (yes, no or maybe, then the conclusion with [n]):"""
_DECISION = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)


def installed_models() -> list[str]:
    from cellops.kernels_lib.models import catalog

    return ["default"] + [m.uri for m in catalog.CATALOG.values() if catalog.is_pulled(m)]


def answers(model: str, rows: list[dict], max_tokens: int) -> dict[str, float]:
    from cellops.kernels_lib import prompts, rag
    from cellops.kernels_lib.rag.evaluation import groundedness, token_f1

    prompts.save("bench-decision", TEMPLATE, SYSTEM, {"temperature": 0.0, "max_tokens": max_tokens})
    f1, acc, cprec, grounded, tps = [], [], [], [], []
    for r in rows:
        a = rag.ask("pubmedqa", r["question"], k=3, model=model, prompt="bench-decision")
        f1.append(token_f1(a.text, r["long_answer"]))
        m = _DECISION.search(a.text[:40])
        acc.append(float(bool(m) and m.group(1).lower() == r["decision"]))
        if a.citations:
            cprec.append(float(np.mean([c.hit.doc_id == str(r["id"]) for c in a.citations])))
        grounded.append(groundedness(a.text, [h.text for h in a.passages]))
        if a.generation and a.generation.completion_tokens > 1:
            tps.append(a.generation.tokens_per_s)
    return {"f1": float(np.mean(f1)), "decision_acc": float(np.mean(acc)),
            "citation_precision": float(np.mean(cprec)) if cprec else float("nan"),
            "groundedness": float(np.mean(grounded)), "tokens_per_s": statistics.median(tps) if tps else float("nan")}


def judge_auc(model: str, rows: list[dict]) -> float:
    from cellops.kernels_lib.guard.checks.judge import PROMPTS
    from cellops.kernels_lib.guard.checks.judge import SYSTEM as JUDGE_SYSTEM
    from cellops.kernels_lib.models import get_llm

    llm = get_llm(model)
    p_yes, y = [], []
    for r in rows:
        msgs = [{"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": PROMPTS["input"].format(text=r["text"])}]
        p_yes.append(llm.p_yes(msgs))  # type: ignore[attr-defined]
        y.append(r["label"] != "benign")
    from cellops.kernels_lib.guard.ranking import auc

    return auc(np.array(p_yes), np.array(y))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--corpus", type=int, default=300, help="abstracts in the index")
    ap.add_argument("--guard-rows", type=int, default=100, help="half harmful, half benign")
    ap.add_argument("--max-tokens", type=int, default=80)
    ap.add_argument("--models", help="comma-separated URIs (default: every installed model)")
    args = ap.parse_args()
    os.environ.setdefault("CELLOPS_WANDB", "off")
    # the same persistent workspace and corpus as bench_rag_modes.py: the index is built once
    tmp = Path.home() / ".cache" / "cellops-bench" / "rag-modes"
    os.environ["CELLOPS_HOME"] = str(tmp / ".cellops")
    from cellops.kernels_lib import rag
    from cellops.kernels_lib.rag.evaluation import qa_to_beir

    files = qa_to_beir(SHARED / "rag" / "pubmedqa_dev.jsonl", tmp / "beir", limit=args.corpus)
    rag.build("pubmedqa", {str(files["corpus"]): str(files["corpus"])})
    qa = [json.loads(x) for x in (SHARED / "rag" / "pubmedqa_dev.jsonl").read_text().splitlines() if x.strip()]
    qa = qa[: args.questions]
    guard_rows = [json.loads(x) for x in (SHARED / "guard" / "harmful_benign_dev.jsonl").read_text().splitlines()]
    half = args.guard_rows // 2
    guard_rows = guard_rows[:half] + guard_rows[100:100 + half]
    models = args.models.split(",") if args.models else installed_models()
    table = []
    for m in models:
        t0 = time.perf_counter()
        res = answers(m, qa, args.max_tokens) | {"judge_auc": judge_auc(m, guard_rows)}
        res["seconds"] = time.perf_counter() - t0
        table.append((m, res))
        print(m, json.dumps({k: round(v, 3) for k, v in res.items()}), flush=True)
    cols = ("f1", "decision_acc", "citation_precision", "groundedness", "tokens_per_s", "judge_auc")
    print(f"\n{len(qa)} PubMedQA questions (k=3, max_tokens {args.max_tokens}), {len(guard_rows)} guard rows")
    print(f"{'model':12}" + "".join(f"{c:>20}" for c in cols))
    for m, res in table:
        print(f"{m:12}" + "".join(f"{res[c]:20.3f}" for c in cols))
    print("\n| model | " + " | ".join(cols) + " | seconds |")
    print("|" + "---|" * (len(cols) + 2))
    for m, res in table:
        print(f"| {m} | " + " | ".join(f"{res[c]:.3f}" for c in cols) + f" | {res['seconds']:.0f} |")


if __name__ == "__main__":
    with LoadWatch():
        main()
