"""Benchmark: training tokens/s and peak memory of the %%finetune path (a real DeepSpeed job) vs a
plain transformers Trainer without DeepSpeed, same model (embedded SmolLM2-135M, LoRA), same
tokenized data, same steps, measured the same way (tokens over optimizer steps 2..N, excluding
evals, saves and the warm-up step).

    .venv/bin/python benchmarks/bench_finetune.py [--steps 8 --batch 2 --max-len 128]

Runs once each: plain Trainer (baseline, in a child process so its peak RSS is its own), then the
%%finetune default (1 process, --zero auto), ZeRO-2, ZeRO-3 (1 process) and 2 processes (auto).
Prints figures as ratios against the baseline. The CPU is shared: one pass, no repeats.

Measured 2026-11-25, 2 quiet cores (load 0.8 -> 1.4), `--steps 8 --batch 2 --max-len 128`:
  plain Trainer           159.5 tok/s  1.00   peak RSS 1.52 GiB
  %%finetune (auto=ZeRO-0) 158.8 tok/s  1.00            1.58 GiB
  ZeRO-2                  128.6 tok/s  0.81            1.62 GiB
  ZeRO-3                   54.4 tok/s  0.34            1.77 GiB
  2 procs (auto=ZeRO-0)   149.4 tok/s  0.94            1.58 + 1.58 GiB
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _load import LoadWatch
from _scratch import scratch_dir

TOPICS = ["rivers", "mountains", "bread", "trains", "bees", "glass", "tides", "clocks", "salt", "kites",
          "maps", "owls", "copper", "tea", "bridges", "ink"]


def make_data(path: Path, n: int) -> Path:
    """Varied chat rows of realistic length (a question and a few sentences of answer)."""
    rows = []
    for i in range(n):
        t = TOPICS[i % len(TOPICS)]
        q = f"Explain in a few sentences how {t} matter to a small coastal town, example {i}."
        a = (f"In a small coastal town, {t} shape daily life in quiet ways. People talk about {t} at the "
             f"market, children learn about {t} at school, and visitors often ask about them. Over the "
             f"years the town has kept records of {t}, and those records ({i}) help everyone plan ahead.")
        rows.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def baseline(run_dir: Path, steps: int) -> None:
    """Child process: the plain Trainer (no DeepSpeed) on the run folder's tokenized data."""
    from functools import partial

    import torch
    from transformers import AutoTokenizer, Trainer, TrainingArguments

    from cellops.kernels_lib.train.tokenize import collate
    from cellops.kernels_lib.train.worker import (
        build_model,
        load_examples,
        make_callback,
        peak_rss_gb,
    )

    spec = json.loads((run_dir / "run.json").read_text())
    cfg = spec["config"]
    rows = load_examples(run_dir / "data" / "train.jsonl")
    tok = AutoTokenizer.from_pretrained(spec["base_path"])
    model = build_model(spec, torch.float32)
    cb = make_callback(None, None, 0)
    args = TrainingArguments(
        output_dir=str(run_dir / "plain"), per_device_train_batch_size=cfg["batch"],
        learning_rate=cfg["learning_rate"], max_steps=steps, seed=cfg["seed"], data_seed=cfg["seed"],
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        remove_unused_columns=False, include_num_input_tokens_seen="non_padding",
        max_grad_norm=cfg["grad_clip"],
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows,
                      data_collator=partial(collate, pad_id=tok.pad_token_id), callbacks=[cb])
    trainer.train()
    print("RESULT " + json.dumps({"tokens_per_s": cb.tp.tokens_per_s, "peak_rss_gb": peak_rss_gb()}))


def run_ds(name: str, data: Path, steps: int, batch: int, max_len: int, **kw: object) -> dict:
    import cellops

    t0 = time.perf_counter()
    job = cellops.finetune.launch({"name": name, "data": str(data), "max_steps": steps, "batch": batch,
                                   "max_len": max_len, "eval_split": 0, "samples": 0, "save_every": 0,
                                   "log_every": 1, **kw})
    t_launch = time.perf_counter() - t0
    try:
        job.wait()
    except cellops.CellopsError as e:  # report the failure in the table, keep measuring the rest
        return {"name": name, "error": str(e)[:160], "zero": job.plan["stage"], "world": job.plan["world"]}
    evs = job.events()
    t_launch_ev = next(e["t"] for e in evs if e["kind"] == "launch")
    t_start = next(e["t"] for e in evs if e["kind"] == "start")
    m = job.metrics
    return {"name": name, "job": job, "zero": job.plan["stage"], "reason": job.plan["reason"],
            "world": job.plan["world"], "tokens_per_s": m["tokens_per_s"], "peak_rss_gb": m["peak_rss_gb"],
            "prepare_s": t_launch, "startup_s": t_start - t_launch_ev}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--baseline-of", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.baseline_of:
        return baseline(Path(a.baseline_of), a.steps)
    tmp = scratch_dir("bench_finetune_")
    os.environ.setdefault("CELLOPS_HOME", str(tmp / ".cellops"))
    os.environ.setdefault("CELLOPS_WANDB", "off")  # W&B costs start-up time, not tokens/s
    data = make_data(tmp / "data.jsonl", 64)
    watch = LoadWatch()  # after the baseline child's branch: its stdout is parsed
    runs = [run_ds("default", data, a.steps, a.batch, a.max_len)]
    print(f"%%finetune default: {runs[0]['reason']}")
    out = subprocess.run([sys.executable, __file__, "--baseline-of", str(runs[0]["job"].run_dir),
                          "--steps", str(a.steps)], capture_output=True, text=True)
    res = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if not res:
        sys.exit(f"baseline failed:\n{out.stderr[-3000:]}")
    base = json.loads(res[0][7:])
    runs.append(run_ds("zero2", data, a.steps, a.batch, a.max_len, zero="2"))
    runs.append(run_ds("zero3", data, a.steps, a.batch, a.max_len, zero="3"))
    runs.append(run_ds("procs2", data, a.steps, a.batch, a.max_len, procs=2))
    print(f"\nSmolLM2-135M LoRA, {a.steps} steps x batch {a.batch} x max-len {a.max_len}, fp32 CPU")
    print(f"{'run':<22}{'ZeRO':>5}{'procs':>6}{'tok/s':>9}{'vs plain':>10}{'peak RSS GiB/proc':>19}"
          f"{'prepare s':>11}{'launch->step0 s':>17}")
    print(f"{'plain Trainer':<22}{'-':>5}{1:>6}{base['tokens_per_s']:>9.1f}{1.0:>10.2f}"
          f"{base['peak_rss_gb']:>19.2f}{'-':>11}{'-':>17}")
    for r in runs:
        if "error" in r:
            print(f"{r['name']:<22}{r['zero']:>5}{r['world']:>6}  FAILED: {r['error']}")
            continue
        rss = "/".join(f"{g:.2f}" for g in r["peak_rss_gb"])
        label = {"default": "%%finetune (auto)", "zero2": "ZeRO-2", "zero3": "ZeRO-3", "procs2": "2 procs (auto)"}[r["name"]]
        print(f"{label:<22}{r['zero']:>5}{r['world']:>6}{r['tokens_per_s']:>9.1f}"
              f"{r['tokens_per_s'] / base['tokens_per_s']:>10.2f}{rss:>19}{r['prepare_s']:>11.1f}{r['startup_s']:>17.1f}")
    watch.end()


if __name__ == "__main__":
    main()
