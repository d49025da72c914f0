"""Benchmark: `import cellops` and `%load_ext cellops` stay fast (target < 0.5 s each).

Each figure is the median of fresh interpreters; the baseline is a bare `python -c pass` and
`import IPython` (which a kernel has loaded already) measured in the same run.

    .venv/bin/python benchmarks/bench_import.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from _load import LoadWatch

SNIPPETS = {
    "python -c pass (baseline)": "pass",
    "import IPython (baseline)": "import IPython",
    "import cellops": "import cellops",
    "import cellops + prompts API": "import cellops, cellops.kernels_lib.prompts",
    "%load_ext cellops (after IPython)": (
        "from IPython.testing.globalipapp import get_ipython; ip = get_ipython(); import time; "
        "t = time.perf_counter(); ip.run_line_magic('load_ext', 'cellops'); "
        "print(time.perf_counter() - t)"
    ),
}


def timed(code: str) -> float:
    wrapped = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    if "load_ext" in code:
        wrapped = code
    out = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    for label, code in SNIPPETS.items():
        times = [timed(code) for _ in range(args.repeats)]
        print(f"{label:38s} median {statistics.median(times) * 1000:7.1f} ms")


if __name__ == "__main__":
    with LoadWatch():
        main()
