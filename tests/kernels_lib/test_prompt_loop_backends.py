"""The grid across two real backends (in-process llama.cpp + an OpenAI-compatible llama.cpp server),
and the W&B tables (offline run files)."""

from __future__ import annotations

import json

import pytest
from testsupport import llama_server

from cellops.kernels_lib import prompts


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # --interrupt_requests False: queue concurrent requests instead of cutting them off
    with llama_server(tmp_path_factory.mktemp("server"), "--n_ctx", "1024", "--n_threads", "1",
                      "--interrupt_requests", "False") as base:
        yield f"openai:{base}#smollm2"


def _overlaps(cells) -> bool:
    spans = sorted((c.start_s, c.start_s + c.wall_s) for c in cells)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


@pytest.mark.slow
def test_grid_is_concurrent_on_http_and_serial_in_process(server) -> None:
    prompts.save("cap", "Capital of {{ country }}?", params={"max_tokens": 4})
    cases = [{"country": c} for c in ("France", "Peru", "Chile", "Japan")] + [{"country": "word " * 1500}]
    grid = prompts.compare_grid(["cap@1"], models=["default", server], on=cases, workers=4)
    local = [row[0] for row in grid.cells]
    remote = [row[1] for row in grid.cells]
    assert _overlaps(remote[:4]) and not _overlaps(local)
    # the long case is over the server's 1024-token context (not the in-process 4096): that cell
    # errors, the rest complete
    assert remote[4].error and "closed the stream without an answer" in remote[4].error
    assert all(c.output and c.error is None for c in remote[:4] + local[:4]) and local[4].error is None
    assert [a.output for a in local[:4]] == [b.output for b in remote[:4]]  # same weights, greedy
    again = prompts.compare_grid(["cap@1"], models=["default", server], on=cases, workers=4)
    assert (again.stats.hits, again.stats.misses) == (9, 1)  # the error was not cached
    assert again.cells[4][1].error and again.cells[4][0].cached


@pytest.mark.slow
def test_grid_and_test_results_are_wandb_tables(workspace, monkeypatch) -> None:
    from cellops.kernels_lib.tracking import tracker

    monkeypatch.setenv("CELLOPS_WANDB", "on")
    monkeypatch.setenv("WANDB_MODE", "offline")
    prompts.save("cap", "Capital of {{ country }}?", params={"max_tokens": 4})
    try:
        grid = prompts.compare_grid(["cap@1"], on=[{"country": "Peru"}])
        report = prompts.test("cap@1", cases=[{"vars": {"country": "Peru"},
                                               "assert": [{"type": "max-length", "value": 200}]}])
        tracker.flush()
        assert tracker.error is None, tracker.error
        run_dir = tracker.run_dir
    finally:
        tracker.finish()
    assert run_dir and workspace.get_run(grid.run_id)["record"]["tracker_run_id"] == tracker.run_id
    tables = {p.name.split("_")[0]: json.loads(p.read_text())
              for p in (workspace.root / "wandb").rglob("*.table.json")}
    assert set(tables) >= {"grid", "results"}
    assert tables["grid"]["columns"][:4] == ["case", "vars", "prompt", "model"]
    assert tables["grid"]["data"][0][4] == grid.cells[0][0].output
    assert tables["results"]["data"][0][3] is True and report.ok
