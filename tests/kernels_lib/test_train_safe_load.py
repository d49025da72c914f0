"""The worker's one line for a checkpoint that weights-only loading refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cellops.kernels_lib.train.safe_load import refusal_line


class _Runs:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.makedirs, (self.marker,))


def test_a_refused_load_is_one_line_and_other_errors_are_not_rewritten(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    marker, path = tmp_path / "ran", tmp_path / "crafted.pt"
    torch.save({"x": _Runs(str(marker))}, path)
    with pytest.raises(Exception) as caught:
        torch.load(path, weights_only=True)
    line = refusal_line(caught.value)
    assert line is not None and "\n" not in line and line.startswith("a checkpoint file holds more than tensors")
    assert not marker.exists()
    assert refusal_line(ValueError("bad")) is None
