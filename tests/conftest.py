"""Shared fixtures: a fresh workspace per test, a real IPython shell, the shared dev data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own .cellops (W&B off unless a test turns it on)."""
    from cellops.kernels_lib.workspace import get_workspace

    home = tmp_path / ".cellops"
    monkeypatch.setenv("CELLOPS_HOME", str(home))
    monkeypatch.setenv("CELLOPS_WANDB", "off")
    monkeypatch.chdir(tmp_path)
    return get_workspace(home)


@pytest.fixture
def ip():
    """A real InteractiveShell with cellops loaded."""
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "cellops")
    yield shell
    for name in list(shell.user_ns):
        if name.startswith("t_"):
            shell.user_ns.pop(name)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (dev datasets live outside the repo)")
    return SHARED_DATA
