"""`cellops serve` vs `python -m llama_cpp.server` on the same GGUF and parameters.

Both servers load the embedded SmolLM2 GGUF (n_ctx 4096, n_batch 128, all cores) and get the same
chat messages with the same greedy parameters and a fixed max_tokens; both serialize generation
on one llama.cpp context. At 1, 4 and 16 concurrent clients each arm serves the same request
list; the arms alternate per repeat (same machine state), and the medians of the repeats are
reported: requests/s and p50/p95 latency. The completion token counts of both arms are checked to
be equal (same work). The cellops arm runs with the guard off; then the guard's added p50 is
measured at concurrency 1 (cellops serve --guard default vs --guard off).

    .venv/bin/python benchmarks/bench_serve.py [--requests 16] [--max-tokens 24] [--repeats 3]

With its defaults one run takes well under 10 minutes (it prints its own wall time at the end)
and ends with one verdict line: cellops reaches at least 0.9x llama_cpp.server's throughput at
every level, or which levels fall short.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _load import LoadWatch
from _scratch import scratch_dir

QUESTIONS = ["What is the capital of France?", "Name three primary colors.", "How do plants make food?",
             "Why is the sky blue?", "What is a prime number?", "How far is the Moon?",
             "What do bees make?", "Who wrote Hamlet?"]
TOKEN = "bench-token-" + "z" * 24
# llama_cpp.server loads its model the way cellops does: with llama.cpp's extra CPU buffer types
# off (models/llamacpp.py: their AMX matmul dies with SIGILL on VMs that report AMX but do not
# enable it), so both arms run the same kernels.
LLAMA_SERVER = ("import runpy, sys\n"
                "from cellops.kernels_lib.models.llamacpp import _plain_cpu_buffers\n"
                "with _plain_cpu_buffers():\n"
                "    runpy.run_module('llama_cpp.server', run_name='__main__')\n")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"server exited: {log.read_text()[-1500:]}")
        try:
            if httpx.get(url, timeout=1, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    sys.exit(f"server did not start: {log.read_text()[-1500:]}")


def start_llama(tmp: Path) -> tuple[subprocess.Popen, str]:
    from cellops.kernels_lib.models.weights import default_gguf

    port, log = _port(), tmp / "llama.log"
    proc = subprocess.Popen([sys.executable, "-c", LLAMA_SERVER, "--model", str(default_gguf()),
                             "--host", "127.0.0.1", "--port", str(port), "--model_alias", "bench",
                             "--n_ctx", "4096", "--n_batch", "128", "--n_threads", str(os.cpu_count() or 2),
                             "--verbose", "False"], stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                            start_new_session=True)
    _wait(f"http://127.0.0.1:{port}/v1/models", proc, log)
    return proc, f"http://127.0.0.1:{port}/v1"


def start_cellops(tmp: Path, guard: str) -> tuple[subprocess.Popen, str]:
    port, log = _port(), tmp / f"cellops-{guard}.log"
    (tmp / "token").write_text(TOKEN)
    env = dict(os.environ, CELLOPS_HOME=str(tmp / ".cellops"), CELLOPS_WANDB="off", HF_HUB_OFFLINE="1")
    exe = Path(sys.executable).parent / "cellops"
    proc = subprocess.Popen([str(exe), "serve", "bench", "--port", str(port), "--guard", guard,
                             "--token-file", str(tmp / "token"), "--max-queue", "256", "--per-client", "64"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    _wait(f"http://127.0.0.1:{port}/healthz", proc, log)
    return proc, f"http://127.0.0.1:{port}/v1"


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def one(client: httpx.Client, base: str, q: str, max_tokens: int) -> tuple[float, int, str]:
    body = {"model": "bench", "messages": [{"role": "user", "content": q}], "max_tokens": max_tokens,
            "temperature": 0.0, "top_p": 1.0, "seed": 0}
    t0 = time.perf_counter()
    r = client.post(f"{base}/chat/completions", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    dt = time.perf_counter() - t0
    r.raise_for_status()
    body = r.json()
    return dt, int(body["usage"]["completion_tokens"]), body["choices"][0]["message"]["content"]


def load(base: str, conc: int, n: int, max_tokens: int) -> dict[str, float | list[int]]:
    qs = [QUESTIONS[i % len(QUESTIONS)] for i in range(n)]
    with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=conc)) as c, cf.ThreadPoolExecutor(conc) as pool:
        t0 = time.perf_counter()
        res = list(pool.map(lambda q: one(c, base, q, max_tokens), qs))
        wall = time.perf_counter() - t0
    lat = sorted(x[0] for x in res)
    return {"rps": n / wall, "p50": statistics.median(lat), "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))],
            "tokens": [x[1] for x in res], "texts": [x[2] for x in res]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=16, help="requests per level and arm")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--levels", default="1,4,16")
    a = ap.parse_args()
    started = time.perf_counter()
    tmp = scratch_dir("bench_serve_")
    os.environ["CELLOPS_HOME"] = str(tmp / ".cellops")
    os.environ.setdefault("CELLOPS_WANDB", "off")
    from cellops.kernels_lib import prompts

    prompts.save("bench", "{{ question }}", params={"max_tokens": a.max_tokens})  # the user message as is
    llama, lbase = start_llama(tmp)
    cell, cbase = start_cellops(tmp, "off")
    try:
        for base in (lbase, cbase):  # warm both (model pages, prompt cache state)
            load(base, 1, 4, a.max_tokens)
        print(f"{'clients':>7} {'arm':>8} {'req/s':>7} {'p50 s':>7} {'p95 s':>7}")
        ratios = {}
        for conc in (int(x) for x in a.levels.split(",")):
            runs: dict[str, list[dict]] = {"llama": [], "cellops": []}
            for rep in range(a.repeats):
                order = [("llama", lbase), ("cellops", cbase)]
                for name, base in order if rep % 2 == 0 else order[::-1]:
                    runs[name].append(load(base, conc, a.requests, a.max_tokens))
            tok = {k: [r["tokens"] for r in v] for k, v in runs.items()}
            same = sum(a == b for a, b in zip(runs["llama"][0]["texts"], runs["cellops"][0]["texts"], strict=True))
            # the same greedy text is the same work; both servers count the sampled tokens (the
            # model's own usage), so the totals should be equal: both are printed
            print(f"  same answer text in {same}/{a.requests} requests; completion tokens "
                  f"llama {sum(tok['llama'][0])}, cellops {sum(tok['cellops'][0])} (max_tokens {a.max_tokens})")
            for name in ("llama", "cellops"):
                med = {k: statistics.median(r[k] for r in runs[name]) for k in ("rps", "p50", "p95")}
                print(f"{conc:>7} {name:>8} {med['rps']:>7.2f} {med['p50']:>7.3f} {med['p95']:>7.3f}")
                runs[name] = [med]  # type: ignore[list-item]
            ratios[conc] = runs["cellops"][0]["rps"] / runs["llama"][0]["rps"]
            print(f"        cellops/llama throughput: {ratios[conc]:.3f}x "
                  f"({'ok' if ratios[conc] >= 0.9 else 'BELOW 0.9x'}); tokens/request {sum(tok['cellops'][0]) / a.requests:.1f}")
    finally:
        stop(llama)
        stop(cell)
    guarded, gbase = start_cellops(tmp, "default")
    plain, pbase = start_cellops(tmp, "off")
    try:
        for base in (gbase, pbase):
            load(base, 1, 4, a.max_tokens)
        p50 = {"default": [], "off": []}
        for rep in range(a.repeats):
            for name, base in (("default", gbase), ("off", pbase)) if rep % 2 == 0 else (("off", pbase), ("default", gbase)):
                p50[name].append(load(base, 1, a.requests // 2, a.max_tokens)["p50"])
        g, o = statistics.median(p50["default"]), statistics.median(p50["off"])
        print(f"guard default vs off at 1 client: p50 {g:.3f} s vs {o:.3f} s: the guard adds {1000 * (g - o):.0f} ms")
    finally:
        stop(guarded)
        stop(plain)
    short = [f"{c} clients ({r:.2f}x)" for c, r in ratios.items() if r < 0.9]
    print("verdict: " + ("cellops serve reaches >= 0.9x llama_cpp.server's throughput at every level ("
                         + ", ".join(f"{c}: {r:.2f}x" for c, r in ratios.items()) + ")"
                         if not short else "BELOW 0.9x at " + ", ".join(short)))
    print(f"bench_serve took {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    with LoadWatch():
        main()
