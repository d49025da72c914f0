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


def _own_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "cellops"
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] == "cellops" for a in node.names)
    return False


def test_no_import_error_fallback_for_the_package_own_modules() -> None:
    """A missing cellops module is a broken install: it must fail loudly, not hide a command.
    ImportError is caught only around optional third-party packages."""
    src = Path(cellops.__file__).parent
    offenders, guarded = [], 0
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Try):
                continue
            names = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if not any("ImportError" in n or "ModuleNotFoundError" in n for n in names):
                continue
            guarded += 1
            imports = [s for s in node.body for s in ast.walk(s) if isinstance(s, ast.Import | ast.ImportFrom)]
            calls = [c for s in node.body for c in ast.walk(s) if isinstance(c, ast.Call)
                     and ast.unparse(c.func).endswith("import_module") and "__name__" in ast.unparse(c)]
            if any(_own_import(i) for i in imports) or calls:
                offenders.append(f"{path.relative_to(src)}:{node.lineno}")
    assert guarded > 0 and offenders == []


def test_pipelines_modules_import_each_other_without_a_cycle() -> None:
    """execute / chain / replays share pipelines/result.py instead of importing each other
    inside functions (the old cycle's dodge); every intra-package import is at the top."""
    pkg = KERNELS_LIB / "pipelines"
    graph: dict[str, set[str]] = {}
    late: list[str] = []
    for path in pkg.glob("*.py"):
        tree = ast.parse(path.read_text())
        top = set(tree.body)
        deps = graph.setdefault(path.stem, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
                deps.update(n.split(".")[0] for n in names)
                if node not in top and path.stem in ("execute", "chain", "replays", "result"):
                    late.append(f"{path.stem}: from .{node.module or ''} import ...")
    assert late == []

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(d == goal or (d not in seen and reaches(d, goal, seen | {d})) for d in graph.get(start, ()))

    assert {"execute", "chain", "replays", "result"} <= set(graph)
    assert [m for m in graph if reaches(m, m, set())] == []
