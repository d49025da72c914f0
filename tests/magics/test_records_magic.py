"""A run made by a magic in a notebook records the notebook's path and hash and the cell."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cellops.kernels_lib.records import NotebookContext, RunRecord


@pytest.mark.slow
def test_a_magic_run_records_notebook_path_hash_and_cell(ip, workspace, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    nb = tmp_path / "mine.ipynb"
    nb.write_text('{"cells": []}')
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))  # what jupyter_server sets for its kernels
    cell = "%%prompt hello --max-tokens 4 -o r\nSay hi to {{ who }}."
    ip.run_cell("who = 'Ada'\n")
    ip.run_cell(cell)
    typed = RunRecord.from_row(workspace.list_runs("prompt")[0])
    assert typed.notebook == NotebookContext(  # IPython keeps the cell with its final newline
        str(nb), hashlib.sha256(nb.read_bytes()).hexdigest(), cell + "\n")
    assert typed.output == ip.user_ns["r"].text and typed.env.packages["cellops"]
