"""benchmarks/_load.py: every benchmark prints the load average at start and end through it, and a
run above 1.5 at either end is marked noisy."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load_module():
    spec = importlib.util.spec_from_file_location("_load", BENCH / "_load.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("start,end,noisy", [(0.4, 1.2, False), (0.4, 1.6, True), (2.0, 0.3, True)])
def test_verdict_from_start_and_end(monkeypatch, capsys, start: float, end: float, noisy: bool) -> None:
    mod = _load_module()
    loads = iter([start, end])
    monkeypatch.setattr(os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    with mod.LoadWatch() as w:
        assert f"load average at start: {start:.2f}" in capsys.readouterr().out
    out = capsys.readouterr().out
    assert f"load average at end: {end:.2f}" in out and ("NOISY run" in out) is noisy
    assert w.end() is noisy and capsys.readouterr().out == ""  # printed once


def test_every_benchmark_uses_the_one_helper() -> None:
    benches = sorted(BENCH.glob("bench_*.py"))
    assert len(benches) >= 10
    for path in benches:
        text = path.read_text()
        assert "from _load import LoadWatch" in text and "LoadWatch()" in text, path.name
        assert "getloadavg" not in text, f"{path.name}: print the load through benchmarks/_load.py"
