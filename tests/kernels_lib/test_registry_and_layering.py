"""Registry behaviour, kernels_lib never importing IPython, and a fast `import cellops`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cellops
from cellops.kernels_lib.errors import NotFoundError
from cellops.kernels_lib.registry import Registry

KERNELS_LIB = Path(cellops.__file__).parent / "kernels_lib"
FORBIDDEN = {"IPython", "ipywidgets", "traitlets", "ipykernel"}


def test_registry_lists_available_on_miss() -> None:
    r: Registry[int] = Registry("widget", "test_widgets")
    r.register("a", 1)

    @r.register("b")
    def b() -> int:
        return 2

    assert r.get("a") == 1 and r.get("b")() == 2 and r.names() == ["a", "b"]
    with pytest.raises(NotFoundError, match="unknown widget 'c'; available: a, b"):
        r.get("c")


def test_kernels_lib_never_imports_ipython() -> None:
    offenders = []
    for path in KERNELS_LIB.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_import_loads_no_heavy_module() -> None:
    """Heavy libraries load inside the backend that needs them (import time: bench_import.py)."""
    code = (
        "import sys; import cellops, cellops.kernels_lib.prompts; from cellops.magics import load; "
        "print([m for m in ('torch', 'transformers', 'llama_cpp', 'scann', 'deepspeed', 'wandb',"
        " 'sentence_transformers', 'papermill', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
