"""Traces and real W&B logging in offline mode (no account)."""

from __future__ import annotations

import time

import pytest

from cellops.kernels_lib import prompts
from cellops.kernels_lib.tracking import Trace, tracker


def test_trace_spans_time_and_errors() -> None:
    t = Trace()
    with t.span("a", k=1):
        time.sleep(0.01)
    with pytest.raises(ValueError), t.span("b"):
        raise ValueError("boom")
    spans = t.to_list()
    assert [s["name"] for s in spans] == ["a", "b"]
    assert spans[0]["duration_s"] >= 0.01 and spans[0]["attrs"] == {"k": 1}
    assert spans[1]["attrs"]["error"] == "ValueError: boom"


@pytest.mark.slow
def test_prompt_run_logs_to_offline_wandb(workspace, monkeypatch) -> None:
    monkeypatch.setenv("CELLOPS_WANDB", "on")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    try:
        prompts.save("w", "Say yes.", params={"max_tokens": 4})
        r = prompts.run("w")
        rec = workspace.get_run(r.run_id)["record"]
        assert rec["wandb_run_id"] == tracker.run_id and len(rec["wandb_run_id"]) == 8
        tracker.flush()
        assert tracker.error is None
    finally:
        tracker.finish()
    runs = list((workspace.root / "wandb").glob(f"offline-run-*-{rec['wandb_run_id']}"))
    assert len(runs) == 1
    assert any(f.suffix == ".wandb" and f.stat().st_size > 0 for f in runs[0].iterdir())
