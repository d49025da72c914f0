"""One A/B `cellops serve` shared by the serving tests (its own workspace, tiny max_tokens)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_proc import Served, make_workspace, start_server, stop_server


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One A/B server (helper@1 vs helper@2) shared by the serving tests."""
    root = tmp_path_factory.mktemp("served")
    home = make_workspace(root)
    s = start_server(home, ["helper@1", "--b", "helper@2", "--name", "helper", "--guard", "off",
                            "--max-tokens-limit", "64", "--max-body", "20000", "--per-client", "2"],
                     root / "server.log")
    yield s
    stop_server(s.proc)
