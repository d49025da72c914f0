"""A benchmark's scratch folder: a fresh temp directory removed when the benchmark exits.

Benchmarks fine-tune, build indexes and run servers in their own workspace; left behind, one
`bench_dpo.py` run is 3 GB of /tmp, and a dozen runs filled the disk the CI clone shares.
Set ``CELLOPS_BENCH_KEEP=1`` to keep it for inspection (its path is printed).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("CELLOPS_BENCH_KEEP") == "1":
        print(f"scratch kept: {path}", flush=True)
    else:
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
