"""Benchmark: DPO training tokens/s of the %%finetune path (TRL's DPOTrainer inside a real DeepSpeed
job) vs TRL's DPOTrainer run directly without DeepSpeed: same model (embedded SmolLM2-135M, LoRA),
same preference pairs (the run folder's train split of ../shared/data/pref/hh_harmless_dev.jsonl,
generated pairs when that is absent), same batch, max length, steps and seed, measured the same way
(non-padding tokens of prompt+chosen and prompt+rejected over optimizer steps 2..N, excluding the
warm-up step, evals and saves: worker.Throughput).

    PYTHONPATH=src HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_dpo.py   # defaults (the lead's rerun)
    .venv/bin/python benchmarks/bench_dpo.py [--steps 6 --batch 2 --max-len 192 --repeats 4]
    .venv/bin/python benchmarks/bench_dpo.py --paths   # the other launcher paths, checked (slow)

Like with like: both arms train the same LoRA on the same pairs (the first %%finetune run's train
split and config), same batch, max length, steps, seed, fp32 on CPU and OMP_NUM_THREADS, and
every repeat checks that both arms saw the same number of tokens. The arms run in ABBA order
(%%finetune then direct, direct then %%finetune, ...) so a load trend hits both alike; the direct
arm runs in a child process like the DeepSpeed rank does. Prints each repeat's ratio (the two
arms ran back to back), median / min / max per arm, and the verdict against 0.9x on the geometric
mean of each ABBA pair of repeats (which cancels the advantage of running first): PASS when every
pair's is >= 0.9, FAIL when none is, else INCONCLUSIVE; plus the load average at start
and end (a run above 1.5 is marked noisy: the machine is shared).

Besides tok/s each arm prints its per-step seconds, torch threads and tokens per CPU-second (the
training process's CPU time over the same steps): on this shared machine wall-clock tok/s mostly
measures who got the CPU, CPU time the work done per token.

Measured 2026-12-01 (shared machine, NOISY throughout). 13:30-14:10, wall-clock only, load 3-17:
ratios 2.72, 1.52, 0.45, 0.94, 0.48. 14:21-14:50, 2 + 2 repeats, load 7-11, 1691 tokens per arm:
ratios 1.87, 1.48, 1.29, 2.03 (%%finetune 20.9-38.7, direct 14.1-19.1 tok/s); tokens per
CPU-second 50.6 / 54.7 vs 48.6 / 47.4 (ratios 1.04, 1.15): no extra work per token on the DeepSpeed
path (2 threads per arm, ZeRO-0, fp32, no checkpointing, no workers). Per-step times swing 2-3x
inside a run. 14:50-15:03, the direct arm in its own session (load 6.4 -> 4.0): ratios 1.19, 2.44;
tokens per CPU-second ratios 1.01, 1.16. A quiet rerun decides the wall-clock 0.9x target.

Quiet reruns, 2026-12-01 (session 6, nothing else running; the end load includes the bench's own
two threads): 16:26 --repeats 2, load 0.28 -> 1.59: ratios 1.10, 0.83 (direct median 99.9,
%%finetune 95.3 tok/s). 16:30 --repeats 4, load 0.84 -> 1.33: ratios 1.09, 0.89, 0.95, 1.19,
median 1.02 (direct 84.3, %%finetune 86.3 tok/s); tokens per CPU-second ratios 1.09, 0.89, 0.97,
1.16. In every pair the arm that ran first was faster, so the verdict now uses the ABBA pair
means: 0.96 (first run), 0.98 and 1.06: PASS.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _load import LoadWatch
from _scratch import scratch_dir

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pref" / "hh_harmless_dev.jsonl"


def make_data(path: Path, n: int) -> Path:
    """The first n single-turn hh-rlhf pairs short enough for the max length (most of the set are
    long multi-turn conversations), or generated pairs when the set is absent."""
    if SHARED.is_file():
        def short(r: dict) -> bool:
            return len(r["messages"]) == 1 and len(r["messages"][0]["content"]) < 200 and \
                max(len(r["chosen"]), len(r["rejected"])) < 300

        lines = [ln for ln in SHARED.read_text().splitlines() if short(json.loads(ln))][:n]
    else:
        lines = [json.dumps({"prompt": f"Tell me something useful about topic {i} for a short note.",
                             "chosen": f"Here is a careful, friendly note about topic {i}: keep it simple.",
                             "rejected": f"No. Topic {i} is boring and I will not help with it."}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def direct(run_dir: Path, steps: int) -> None:
    """Child process: TRL's DPOTrainer on the run folder's pairs, no DeepSpeed."""
    import torch
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from cellops.kernels_lib.train.preference import pairs_dataset
    from cellops.kernels_lib.train.worker import (
        build_model,
        load_examples,
        lora_config,
        make_callback,
    )

    spec = json.loads((run_dir / "run.json").read_text())
    cfg = spec["config"]
    tok = AutoTokenizer.from_pretrained(spec["base_path"])
    model = build_model(spec, torch.float32, wrap_lora=False)
    cb = make_callback(None, None, 0)
    args = DPOConfig(
        output_dir=str(run_dir / "direct"), per_device_train_batch_size=cfg["batch"],
        learning_rate=cfg["learning_rate"], max_steps=steps, seed=cfg["seed"], data_seed=cfg["seed"],
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        remove_unused_columns=False, dataloader_num_workers=0, include_num_input_tokens_seen="non_padding",
        max_grad_norm=cfg["grad_clip"], beta=cfg["beta"], max_length=cfg["max_len"],
        gradient_checkpointing=False, bf16=False,
    )
    trainer = DPOTrainer(model=model, args=args, processing_class=tok,
                         train_dataset=pairs_dataset(load_examples(run_dir / "data" / "train.jsonl")),
                         peft_config=lora_config(cfg), callbacks=[cb])
    trainer.train()
    print("RESULT " + json.dumps({"tokens_per_s": cb.tp.tokens_per_s, "step_seconds": cb.tp.step_seconds,
                                  "tokens_per_cpu_s": cb.tp.tokens_per_cpu_s,
                                  "tokens_seen": trainer.state.num_input_tokens_seen,
                                  "torch_threads": torch.get_num_threads()}))


def run_finetune(name: str, data: Path, a: argparse.Namespace) -> tuple[float, Path, int]:
    import cellops

    job = cellops.finetune.launch({"name": name, "data": str(data), "method": "dpo", "max_steps": a.steps,
                                   "batch": a.batch, "max_len": a.max_len, "eval_split": 0, "samples": 0,
                                   "save_every": 0, "log_every": 1})
    job.wait()
    m = job.metrics
    profile("%%finetune", m)
    return m["tokens_per_s"], job.run_dir, m["tokens_seen"]


# tokens per CPU-second of the training process per arm (steps 2..N, like tok/s): the work done per
# token, which other people's load on the shared machine barely moves, unlike wall-clock tok/s
CPU_RATES: dict[str, list[float]] = {"%%finetune": [], "direct": []}


def profile(arm: str, m: dict) -> None:
    """Per-step seconds (the first is the warm-up step the rate leaves out) and the rank's torch threads."""
    CPU_RATES[arm].append(m["tokens_per_cpu_s"])
    steps = m.get("step_seconds") or []
    print(f"  {arm}: step s {steps} (median of 2..N {statistics.median(steps[1:]) if steps[1:] else None}), "
          f"torch threads {m.get('torch_threads')}, tokens per CPU-second {m.get('tokens_per_cpu_s')}", flush=True)


def run_direct(run_dir: Path, steps: int) -> tuple[float, int]:
    # a session of its own, like the %%finetune supervisor's: with the kernel's sched autogroup on
    # (this VM), each session is one scheduling group, so under load both arms get the same share
    out = subprocess.run([sys.executable, __file__, "--direct-of", str(run_dir), "--steps", str(steps)],
                         capture_output=True, text=True, start_new_session=True)
    res = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if not res:
        sys.exit(f"direct DPOTrainer failed:\n{out.stderr[-3000:]}")
    r = json.loads(res[0][7:])
    profile("direct", r)
    return r["tokens_per_s"], r["tokens_seen"]


def check_paths(data: Path) -> None:
    """The paths the suite leaves out to stay small: 2 processes with ZeRO-2, full DPO (a frozen
    reference copy), KTO, ORPO (LoRA), and a DPO run killed after its first checkpoint and resumed."""
    import signal

    import cellops

    tiny = {"data": str(data), "max_steps": 4, "batch": 2, "max_len": 96, "eval_split": 0.25,
            "samples": 1, "sample_tokens": 4, "save_every": 0}
    for name, extra in (("two", {"method": "dpo", "procs": 2, "zero": "2"}),
                        ("full", {"method": "dpo", "adapter": "none", "lr": 1e-5}),
                        ("kto", {"method": "kto"}), ("orpo", {"method": "orpo"})):
        t0 = time.perf_counter()
        job = cellops.finetune.launch({"name": name, **tiny, **extra}).wait()
        m = job.metrics
        print(f"{name}: {job.status} {job.model} world {job.plan['world']} ZeRO-{job.plan['stage']} margin "
              f"{m['eval_margin_before']:.3f} -> {m['eval_margin_after']:.3f} ({time.perf_counter() - t0:.0f} s)")
        assert job.status == "done" and m["eval_margin_after"] is not None
    job = cellops.finetune.launch({"name": "res", **tiny, "method": "dpo", "save_every": 2})
    while not any(e["kind"] == "checkpoint" for e in job.events()):
        assert job.status in ("starting", "running"), job.error
        time.sleep(1)
    os.killpg(int((job.run_dir / "supervisor.pid").read_text()), signal.SIGKILL)
    time.sleep(3)
    resumed = cellops.finetune.resume("res").wait()
    res = [e for e in resumed.events() if e["kind"] == "resume"]
    print(f"resume: {resumed.status} {resumed.model} resumed at step {res[0]['step']}, "
          f"steps {resumed.metrics['steps']}, margin {resumed.metrics['eval_margin_before']:.3f} -> "
          f"{resumed.metrics['eval_margin_after']:.3f}")
    assert resumed.status == "done" and res and res[0]["step"] >= 2 and resumed.metrics["steps"] == 4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--max-len", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=4)  # even: ABBA balances
    ap.add_argument("--paths", action="store_true", help="check 2 procs, full, KTO and resume instead")
    ap.add_argument("--direct-of", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.direct_of:
        return direct(Path(a.direct_of), a.steps)
    tmp = scratch_dir("bench_dpo_")
    os.environ.setdefault("CELLOPS_HOME", str(tmp / ".cellops"))
    os.environ.setdefault("CELLOPS_WANDB", "off")
    data = make_data(tmp / "pairs.jsonl", a.steps * a.batch + 4)
    if a.paths:
        return check_paths(data)
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))  # both arms: same threads
    watch = LoadWatch()  # after the child branches: their stdout is parsed
    t0 = time.perf_counter()
    ft: list[tuple[float, int]] = []
    dr: list[tuple[float, int]] = []
    run_dir = None  # the first %%finetune run's folder: the direct arm reads its split and config
    for i in range(a.repeats):
        # ABBA order: a load trend over the run hits both arms alike
        order = ("ft", "direct") if i % 2 == 0 else ("direct", "ft")
        for arm in order:
            if arm == "ft":
                tps, folder, seen = run_finetune(f"bench{i}", data, a)
                ft.append((tps, seen))
                run_dir = run_dir or folder
            else:
                assert run_dir is not None  # repeat 1 runs %%finetune first
                dr.append(run_direct(run_dir, a.steps))
        (f_tps, f_seen), (d_tps, d_seen) = ft[-1], dr[-1]
        same = "same tokens" if f_seen == d_seen else f"TOKENS DIFFER {f_seen} vs {d_seen}"
        print(f"repeat {i + 1} ({' then '.join(order)}): %%finetune {f_tps:.1f} tok/s · direct DPOTrainer "
              f"{d_tps:.1f} tok/s · ratio {f_tps / d_tps:.2f} · {f_seen} tokens ({same})", flush=True)
    report(a, [t for t, _ in ft], [t for t, _ in dr], watch.end())
    print(f"wall time {time.perf_counter() - t0:.0f} s")


def spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.1f}, min {min(xs):.1f}, max {max(xs):.1f}"


def report(a: argparse.Namespace, ft: list[float], dr: list[float], noisy: bool) -> None:
    """Medians and spread per arm, the per-repeat ratios and the verdict against 0.9x.

    Repeat i runs %%finetune first when i is odd and second when i is even (ABBA), and on this
    machine whichever arm runs first in a pair is ~10% faster (quiet runs: ratios 1.09 / 0.89 /
    0.95 / 1.19). One ratio therefore mixes the paths with the order; the geometric mean of each
    ABBA pair of ratios (repeats 1+2, 3+4, ...) cancels the order, so the verdict is on those:
    PASS when every pair's mean is >= 0.9, FAIL when none is, else INCONCLUSIVE."""
    ratios = [f / d for f, d in zip(ft, dr, strict=True)]
    med = statistics.median(ratios)
    print(f"\nSmolLM2-135M DPO LoRA, {a.steps} steps x batch {a.batch} pairs x max-len {a.max_len}, fp32 CPU, "
          f"{a.repeats} repeats (ABBA), OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"{'direct DPOTrainer (no DeepSpeed)':<36} tok/s {spread(dr)}")
    print(f"{'%%finetune --method dpo (DeepSpeed)':<36} tok/s {spread(ft)}")
    print(f"ratio per repeat: {', '.join(f'{r:.2f}' for r in ratios)}; median {med:.2f} (target >= 0.90)")
    first, second = ratios[0::2], ratios[1::2]
    if second:
        print(f"order effect: median ratio {statistics.median(first):.2f} with %%finetune first, "
              f"{statistics.median(second):.2f} with it second")
    pairs = [math.sqrt(x * y) for x, y in zip(first, second, strict=False)] or ratios
    print(f"ABBA pair means (order cancelled): {', '.join(f'{r:.2f}' for r in pairs)}")
    cpu = [f / d for f, d in zip(CPU_RATES["%%finetune"], CPU_RATES["direct"], strict=True)]
    print(f"tokens per CPU-second: direct {spread(CPU_RATES['direct'])}, %%finetune {spread(CPU_RATES['%%finetune'])}; "
          f"ratio per repeat {', '.join(f'{r:.2f}' for r in cpu)} (work per token: other load moves it far less than wall time)")
    verdict = ("PASS" if min(pairs) >= 0.9 else "FAIL" if max(pairs) < 0.9 else
               "INCONCLUSIVE (the ABBA pairs disagree)")
    print(f"verdict: {verdict}" + (" on a NOISY machine: rerun quiet" if noisy else ""))


if __name__ == "__main__":
    main()
