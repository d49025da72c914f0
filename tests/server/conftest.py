"""A real `jupyter server` subprocess (token auth, 127.0.0.1, random port) shared by a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jupyter_proc import Server, start_jupyter, stop_jupyter


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("jupyter")
    root = tmp / "root"
    root.mkdir()
    s = start_jupyter("server", root, tmp)
    yield s
    stop_jupyter(s)
    assert s.proc.poll() is not None
