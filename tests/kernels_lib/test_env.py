"""kernels_lib/env.py: one reading of boolean env flags (CELLOPS_BATCH=0 means off)."""

from __future__ import annotations

import pytest

from cellops.kernels_lib import env


@pytest.mark.parametrize("value", ["", "0", "false", "FALSE", "no", "No", "off", " 0 "])
def test_off_values(monkeypatch, value: str) -> None:
    monkeypatch.setenv("CELLOPS_BATCH", value)
    assert env.flag("CELLOPS_BATCH") is False and env.batch() is False


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "2"])
def test_on_values(monkeypatch, value: str) -> None:
    monkeypatch.setenv("CELLOPS_BATCH", value)
    assert env.flag("CELLOPS_BATCH") is True and env.batch() is True


def test_unset_is_off(monkeypatch) -> None:
    monkeypatch.delenv("CELLOPS_BATCH", raising=False)
    assert env.batch() is False


def test_every_reader_goes_through_the_helper() -> None:
    """No module reads CELLOPS_BATCH with os.environ directly (that took "0" for on)."""
    from pathlib import Path

    import cellops

    root = Path(cellops.__file__).parent
    readers = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
               if 'environ.get("CELLOPS_BATCH"' in p.read_text() or "environ['CELLOPS_BATCH']" in p.read_text()]
    assert readers == []
    assert 'flag("CELLOPS_BATCH")' in (root / "kernels_lib" / "env.py").read_text()
