"""The extension's jest suite (pure front-end logic in jsdom), run from pytest so CI counts it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EXT = Path(__file__).resolve().parents[2] / "extension"
pytestmark = pytest.mark.ui


def test_jest_suite_passes():
    if shutil.which("npx") is None or not (EXT / "node_modules" / ".bin" / "jest").exists():
        pytest.fail("node_modules missing: run extension/build.sh (needs node >= 20 and npm)")
    r = subprocess.run(["npx", "jest", "--ci"], cwd=EXT, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "failed" not in out.split("Tests:")[-1].split("\n")[0], out[-2000:]
    assert " passed" in out
