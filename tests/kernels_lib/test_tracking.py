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
        assert rec["tracker"] == "wandb" and rec["tracker_run_id"] == tracker.run_id
        assert len(rec["tracker_run_id"]) == 8
        tracker.flush()
        assert tracker.error is None
    finally:
        tracker.finish()
    runs = list((workspace.root / "wandb").glob(f"offline-run-*-{rec['tracker_run_id']}"))
    assert len(runs) == 1
    assert any(f.suffix == ".wandb" and f.stat().st_size > 0 for f in runs[0].iterdir())


class Recorder:
    """A tracker as a plugin provides one (start/log/summary/flush/finish), keeping what it got."""

    error = None

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.logged: list[dict] = []

    def start(self, root, job_type="notebook", config=None) -> str:  # noqa: ANN001
        self.run_id = f"rec-{job_type}"
        return self.run_id

    def log(self, data: dict, tables: dict | None = None) -> None:
        self.logged.append(data)

    def summary(self, data: dict) -> None:
        pass

    def flush(self, timeout: float = 120.0) -> None:
        pass

    def finish(self) -> None:
        pass


def test_the_tracker_comes_from_config_then_env_then_wandb(workspace, monkeypatch) -> None:
    from cellops.kernels_lib import train
    from cellops.kernels_lib.errors import NotFoundError
    from cellops.kernels_lib.tracking import configure, trackers

    rec = Recorder()
    monkeypatch.setitem(trackers._items, "recorder", rec)
    monkeypatch.setenv("CELLOPS_TRACKER", "recorder")
    prompts.save("w", "Say yes.", params={"max_tokens": 2})

    def cited(run_id: str) -> tuple:
        return tuple(workspace.get_run(run_id)["record"].get(k) for k in ("tracker", "tracker_run_id"))

    a = prompts.run("w")
    assert cited(a.run_id) == ("recorder", "rec-notebook") and rec.logged[-1]["prompt/run_id"] == a.run_id
    try:
        configure("wandb")  # %config Cellops.tracker beats CELLOPS_TRACKER (W&B is off in tests)
        b = prompts.run("w", cache=False)
        assert cited(b.run_id) == (None, None) and rec.logged[-1]["prompt/run_id"] == a.run_id
        with pytest.raises(NotFoundError, match="unknown tracker 'nope'; available: .*recorder"):
            configure("nope")
        with pytest.raises(NotFoundError, match="unknown tracker 'nope'; available: .*recorder"):
            train.launch({"name": "t", "data": [{"prompt": "a", "completion": "b"}], "tracker": "nope"})
        assert not (workspace.artifacts / "finetune").exists()  # refused before any work
    finally:
        configure("")
    c = prompts.run("w", cache=False)
    assert cited(c.run_id) == ("recorder", "rec-notebook")


def test_a_resumed_fine_tune_continues_a_tracker_run_when_the_tracker_can() -> None:
    from cellops.kernels_lib.train import track

    class Resumable(Recorder):
        def start(self, root, job_type="notebook", config=None, resume_id=None) -> str:  # noqa: ANN001
            self.run_id = resume_id or f"new-{job_type}"
            return self.run_id

    spec = {"workspace": "/w", "config": {"name": "m"}, "tracker_run_id": "run-7"}
    assert track.start(Resumable(), spec) == "run-7"  # continued
    assert track.start(Resumable(), spec | {"tracker_run_id": None}) == "new-finetune"  # a first launch
    assert track.start(Recorder(), spec) == "rec-finetune"  # a tracker without resume_id: a new run
