"""Benchmark: %%prompt through a real IPython shell vs a direct llama-cpp-python call, like for like.

Same GGUF (embedded SmolLM2), same rendered prompt, same greedy parameters, same token budget, in
one process. The direct arm is a second ``llama_cpp.Llama`` built with cellops's own settings
(n_ctx, n_threads, n_batch, seed, plain CPU buffers), so both evaluate the prompt in batches of
the same size. Both arms run in the same KV-cache state, measured twice:

  warm  both ran this exact prompt just before (each reuses its cached prompt prefix)
  cold  both contexts are reset before every call (the whole prompt is evaluated)

Arms alternate (ABBA) over ``--repeats`` calls; tokens/s are medians, and both arms must produce
the same number of completion tokens (counted by the same tokenizer). Prints both ratios
(magic/direct, target >= 0.95), then the time to first token of the first %%prompt in a fresh
Jupyter kernel (target <= 1.5 s).

    .venv/bin/python benchmarks/bench_generate.py [--tokens 128] [--repeats 5]

Measured 2026-12-01, --tokens 64 --repeats 4, load average ~17 on 2 cores (NOISY: six other
engineers' jobs; per-call rates swung 9-38 tok/s): warm 22.0 vs 14.6 tok/s (ratio 1.51), cold
13.2 vs 14.0 tok/s (ratio 0.94); both arms 64 tokens. Second run, --tokens 128 --repeats 5,
load 4.75 -> 3.96 (NOISY): warm 15.7 vs 18.1 tok/s (ratio 0.87), cold 16.8 vs 18.9 tok/s (ratio
0.89), 128 tokens each; fresh-kernel TTFT 0.80 s. Per-call spread (11.7-21.0 tok/s in one arm)
exceeds the gap, so neither ratio is settled; re-run quiet.

Quiet reruns, 2026-12-01 16:37-16:42 (nothing else running; the end load includes the bench's own
two threads), --tokens 128, 128 tokens per call in both arms: --repeats 6, load 0.14 -> 1.46:
warm 41.5 vs 44.6 tok/s (ratio 0.932), cold 39.0 vs 38.7 (1.006), fresh-kernel TTFT 0.69 s;
--repeats 10, load 1.10 -> 1.49: warm 45.3 vs 44.4 (1.022), cold 38.8 vs 40.2 (0.963), TTFT
0.63 s. Per-call rates spread 30-49 tok/s in one arm, so the two ratios are 1.0 within +-7%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _load import LoadWatch

os.environ.setdefault("CELLOPS_WANDB", "off")
TEMPLATE = "Write a detailed story about {{ hero }} who explores a lost city under the sea."


def direct_llm() -> Any:
    """A Llama with exactly the settings cellops's llama.cpp backend loads with."""
    from llama_cpp import Llama

    from cellops.kernels_lib.models import llamacpp
    from cellops.kernels_lib.models.weights import default_gguf

    with llamacpp._plain_cpu_buffers():
        return Llama(model_path=str(default_gguf()), n_ctx=llamacpp._n_ctx(), n_threads=os.cpu_count() or 2,
                     n_batch=llamacpp.LARGE, verbose=False, seed=0)


def direct_call(llm: Any, prompt: str, stops: list[str], tokens: int) -> tuple[float, str]:
    t0 = time.perf_counter()
    text = "".join(c["choices"][0]["text"] for c in llm.create_completion(
        prompt, max_tokens=tokens, temperature=0.0, top_p=1.0, stop=stops, seed=0, stream=True))
    return time.perf_counter() - t0, text


class MagicArm:
    def __init__(self, tokens: int) -> None:
        from IPython.testing.globalipapp import get_ipython

        from cellops.kernels_lib.models import get_llm

        self.ip = get_ipython()
        self.ip.run_line_magic("load_ext", "cellops")
        self.ip.user_ns["hero"] = "a curious otter"
        self.line = f"bench --max-tokens {tokens} --temperature 0 --no-cache -o r"  # the model, not the cache
        self.ip.run_cell_magic("prompt", self.line, TEMPLATE)  # loads the model
        self.model = get_llm("default")
        r = self.ip.user_ns["r"]
        self.prompt, self.stops = self.model.render(r.messages)

    def call(self) -> tuple[float, str]:
        t0 = time.perf_counter()
        self.ip.run_cell_magic("prompt", self.line, TEMPLATE)
        return time.perf_counter() - t0, self.ip.user_ns["r"].text

    def reset(self) -> None:
        self.model._llm.reset()  # empty the KV cache: the next call evaluates the whole prompt


def measure(arms: dict[str, Callable[[], tuple[float, str]]], resets: dict[str, Callable[[], None]] | None,
            repeats: int) -> dict[str, list[tuple[float, str]]]:
    """ABBA order; with ``resets``, each arm's context is emptied right before its call."""
    out: dict[str, list[tuple[float, str]]] = {k: [] for k in arms}
    names = list(arms)
    for name in names:  # warm-up: the same prompt once in each arm (page cache, KV prefix)
        arms[name]()
    for rep in range(repeats):
        for name in (names if rep % 4 in (0, 3) else names[::-1]):
            if resets:
                resets[name]()
            out[name].append(arms[name]())
    return out


def ttft_fresh_kernel() -> float:
    """Seconds from sending the first %%prompt cell to the first streamed token."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive("%load_ext cellops", timeout=60)
        t0 = time.perf_counter()
        first: list[float] = []

        def hook(msg: dict) -> None:
            if not first and msg["msg_type"] in {"update_display_data", "stream"}:
                data = msg["content"].get("data", {}).get("text/html", "") or msg["content"].get("text", "")
                if data.strip():
                    first.append(time.perf_counter() - t0)

        kc.execute_interactive("%%prompt ttft --max-tokens 16\nSay hello.", timeout=120,
                               output_hook=hook)
        return first[0] if first else float("nan")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def report(state: str, runs: dict[str, list[tuple[float, str]]], count: Callable[[str], int]) -> float:
    tps = {}
    for name, rs in runs.items():
        ns = {count(text) for _, text in rs}
        assert len(ns) == 1, f"{name} produced different token counts across calls: {ns}"
        n = ns.pop()
        tps[name] = statistics.median(n / dt for dt, _ in rs)
        print(f"  {state:4} {name:20} {n} tokens, median {statistics.median(dt for dt, _ in rs):.3f}s "
              f"-> {tps[name]:.1f} tok/s  (per call: {', '.join(f'{n / dt:.1f}' for dt, _ in rs)})")
    ratio = tps["%%prompt via IPython"] / tps["direct llama-cpp"]
    print(f"  {state:4} ratio (magic/direct): {ratio:.3f}  (target >= 0.95)", flush=True)
    return ratio


def main(watch: LoadWatch) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["CELLOPS_HOME"] = os.path.join(home, ".cellops")
        magic = MagicArm(args.tokens)
        llm = direct_llm()
        arms = {"%%prompt via IPython": magic.call,
                "direct llama-cpp": lambda: direct_call(llm, magic.prompt, magic.stops, args.tokens)}
        resets = {"%%prompt via IPython": magic.reset, "direct llama-cpp": llm.reset}

        def count(text: str) -> int:  # one tokenizer counts both arms' completions
            return len(llm.tokenize(text.encode(), add_bos=False, special=True))

        print(f"same prompt ({len(llm.tokenize(magic.prompt.encode(), add_bos=True, special=True))} tokens), "
              f"max {args.tokens} new tokens, greedy, n_batch {llm.n_batch}, n_threads {llm.n_threads}, "
              f"n_ctx {llm.n_ctx()}, {args.repeats} calls per arm and state")
        warm = report("warm", measure(arms, None, args.repeats), count)
        cold = report("cold", measure(arms, resets, args.repeats), count)
        noisy = watch.end()
        print(f"ratios (magic/direct): warm {warm:.3f}, cold {cold:.3f}" + ("  [NOISY: machine loaded]" if noisy else ""))
        llm.close()
        os.environ["CELLOPS_HOME"] = os.path.join(home, "fresh", ".cellops")
        print(f"time to first token, first %%prompt in a fresh kernel: {ttft_fresh_kernel():.3f}s (target <= 1.5)")


if __name__ == "__main__":
    with LoadWatch() as w:
        main(w)
