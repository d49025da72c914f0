"""``cellops quickstart``: run notebooks/quickstart.ipynb on the embedded defaults."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def notebooks_dir() -> Path:
    """notebooks/ of a source checkout, else the copy installed with the package."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "notebooks", Path(sys.prefix) / "share" / "cellops" / "notebooks"):
        if (candidate / "quickstart.ipynb").exists():
            return candidate
    raise FileNotFoundError("quickstart.ipynb not found; reinstall cellops")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="run the quickstart notebook (the tour of every magic)")
    p.add_argument("--out", default="cellops-quickstart", help="folder for the executed notebook")
    p.add_argument("--timeout", type=int, default=3600, help="seconds for the whole run")
    p.set_defaults(func=_quickstart)


def _quickstart(args: argparse.Namespace) -> int:
    from ..kernels_lib import pipelines

    nb = notebooks_dir() / "quickstart.ipynb"
    print(f"running {nb} with papermill (embedded SmolLM2 + MiniLM; first run loads the models)...")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)  # the tour writes its files here, not into the checkout
    record = pipelines.run(str(nb), {}, out_dir=out, timeout=args.timeout, cwd=out, progress=True)
    print(f"status: {record.status}")
    print(f"executed notebook: {record.record['output_notebook']}")
    if record.record.get("output_html"):
        print(f"html: {record.record['output_html']}")
    print(f"run record: cellops runs  (id {record.id})")
    return 0 if record.status == "ok" else 1
