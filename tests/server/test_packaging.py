"""The installed package enables both halves: `jupyter labextension list` / `server extension list`."""

from __future__ import annotations

import re
import subprocess
import sys

import cellops


def _jupyter(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "jupyter", *args], capture_output=True, text=True,
                       timeout=120)
    return re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)  # drop colour codes


def test_labextension_is_installed_and_compatible():
    out = _jupyter("labextension", "list")
    line = next((ln for ln in out.splitlines() if ln.strip().startswith("cellops ")), None)
    assert line is not None, f"cellops labextension not installed (run extension/build.sh, then pip install):\n{out}"
    assert f"v{cellops.__version__}" in line and "enabled" in line and "OK" in line, line
    assert "(python, cellops)" in line  # installed by pip, uninstalled with it
    assert "not compatible" not in out


def test_server_extension_is_enabled_and_loads():
    out = _jupyter("server", "extension", "list")
    assert re.search(r"^\s*cellops enabled", out, re.M), out
    assert re.search(rf"^\s*cellops {re.escape(cellops.__version__)} OK", out, re.M), out
