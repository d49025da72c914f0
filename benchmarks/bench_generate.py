"""Benchmark: %%prompt through a real IPython shell vs a direct llama-cpp-python call.

Same GGUF (embedded SmolLM2), same rendered prompt, same greedy parameters, in one process.
Prints tokens/s for both and their ratio (target >= 0.95), then the time to first token of the
first %%prompt in a fresh Jupyter kernel (target <= 1.5 s).

    .venv/bin/python benchmarks/bench_generate.py [--tokens 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from _load import LoadWatch

os.environ.setdefault("CELLOPS_WANDB", "off")
TEMPLATE = "Write a detailed story about {{ hero }} who explores a lost city under the sea."


def bench_direct(gguf: str, prompt: str, stops: list[str], tokens: int) -> tuple[float, int]:
    from llama_cpp import Llama

    llm = Llama(model_path=gguf, n_ctx=4096, n_threads=os.cpu_count(), verbose=False, seed=0)
    t0 = time.perf_counter()
    n = 0
    for chunk in llm.create_completion(prompt, max_tokens=tokens, temperature=0.0, top_p=1.0,
                                       stop=stops, seed=0, stream=True):
        if chunk["choices"][0]["text"]:
            n += 1
    dt = time.perf_counter() - t0
    llm.close()
    return dt, n


def bench_magic(tokens: int, repeats: int) -> tuple[list[float], int, str, list[str]]:
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "cellops")
    ip.user_ns["hero"] = "a curious otter"
    line = f"bench --max-tokens {tokens} --temperature 0 --no-cache -o r"  # measure the model, not the cache
    ip.run_cell_magic("prompt", line, TEMPLATE)  # warm: loads the model once
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ip.run_cell_magic("prompt", line, TEMPLATE)
        times.append(time.perf_counter() - t0)
    r = ip.user_ns["r"]
    from cellops.kernels_lib.models import get_llm

    prompt, stops = get_llm("default").render(r.messages)
    return times, r.generation.completion_tokens, prompt, stops


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["CELLOPS_HOME"] = os.path.join(home, ".cellops")
        from cellops.kernels_lib.models.weights import default_gguf

        times, n_magic, prompt, stops = bench_magic(args.tokens, args.repeats)
        direct = [bench_direct(str(default_gguf()), prompt, stops, args.tokens) for _ in range(args.repeats)]
        magic_tps = n_magic / statistics.median(times)
        direct_tps = statistics.median(n / dt for dt, n in direct)
        print(f"%%prompt via IPython: {n_magic} tokens, median {statistics.median(times):.3f}s -> {magic_tps:.1f} tok/s")
        print(f"direct llama-cpp:     {direct[0][1]} tokens -> {direct_tps:.1f} tok/s")
        print(f"ratio (magic/direct): {magic_tps / direct_tps:.3f}  (target >= 0.95)")
        os.environ["CELLOPS_HOME"] = os.path.join(home, "fresh", ".cellops")
        print(f"time to first token, first %%prompt in a fresh kernel: {ttft_fresh_kernel():.3f}s (target <= 1.5)")


if __name__ == "__main__":
    with LoadWatch():
        main()
