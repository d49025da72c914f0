"""cellops: LLMOps inside Jupyter.

In a notebook: ``%load_ext cellops``, then ``%%prompt``, ``%%rag``, ``%%guard``, ``%%finetune``.
From Python: ``cellops.generate``, ``cellops.prompts``, ``cellops.rag``, ``cellops.guard``,
``cellops.finetune``, ``cellops.pipelines``, ``cellops.traces`` (imported on first use, so ``import cellops`` is fast).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# torch's OpenMP threads spin-wait after each parallel region by default, holding the cores the
# next llama.cpp or ONNX Runtime call in this process needs; PASSIVE makes them sleep at once.
# Every OpenMP runtime reads it once, when it loads, so it is set here, before any of them can
# (benchmarks/bench_omp_wait.py measures it). A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_SUBMODULES = {
    "prompts": "cellops.kernels_lib.prompts",
    "rag": "cellops.kernels_lib.rag",
    "guard": "cellops.kernels_lib.guard",
    "finetune": "cellops.kernels_lib.train",
    "pipelines": "cellops.kernels_lib.pipelines",
    "chains": "cellops.kernels_lib.chains",
    "datasets": "cellops.kernels_lib.datasets",
    "models": "cellops.kernels_lib.models",
    "errors": "cellops.kernels_lib.errors",
    "traces": "cellops.kernels_lib.tracking.traces",
}
_FUNCTIONS = {
    "generate": ("cellops.kernels_lib.models", "generate"),
    "get_workspace": ("cellops.kernels_lib.workspace", "get_workspace"),
    "CellopsError": ("cellops.kernels_lib.errors", "CellopsError"),
}

__all__ = ["__version__", "load_ipython_extension", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    if name in _FUNCTIONS:
        mod, attr = _FUNCTIONS[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'cellops' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cellops``: register the magics."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "cellops.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "cellops"}]
