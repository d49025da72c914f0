"""W&B failing for real (a file sits where W&B wants its run folder): one warning for the session,
the work still recorded, and no record citing the W&B run that was never written."""

from __future__ import annotations

import warnings

from cellops.kernels_lib import prompts
from cellops.kernels_lib.models import Generation, backends
from cellops.kernels_lib.tracking import tracker


class EchoModel:
    """A model that answers with its prompt (this test is about tracking, not generation)."""

    supports_concurrency = False

    def __init__(self, spec: str, uri: str, ws: object) -> None:
        self.uri = uri

    def weights_hash(self) -> str:
        return "echo"

    def generate(self, messages, params, on_token=None) -> Generation:
        return Generation(messages[-1]["content"], self.uri, 1, 1, 0.001)


def test_wandb_failure_warns_once_and_no_record_cites_the_missing_run(workspace, monkeypatch) -> None:
    monkeypatch.setitem(backends._items, "echo", EchoModel)
    monkeypatch.setenv("CELLOPS_WANDB", "on")
    monkeypatch.setenv("WANDB_MODE", "offline")
    (workspace.root / "wandb").write_text("a file where W&B wants its folder")
    prompts.save("p", "Say {{ x }}", params={"model": "echo:"}, workspace=workspace)
    tracker.finish()  # a fresh W&B session for this process
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = prompts.compare_grid(["p@1"], on=[{"x": "a"}], cache=False)
            cited = tracker.run_id
            tracker.flush()  # wandb.init has failed by now
            second = prompts.compare_grid(["p@1"], on=[{"x": "b"}], cache=False)
            tracker.flush()
        assert tracker.failed and "NotADirectoryError" in tracker.error
        shown = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
                 and "W&B" in str(w.message)]
        assert len(shown) == 1 and "W&B tracking is off for this session" in shown[0]
        rec1, rec2 = (workspace.get_run(g.run_id)["record"] for g in (first, second))
        assert cited and rec1["tracker_run_id"] is None and rec2["tracker_run_id"] is None
        assert rec1["tracker"] == "wandb" and "NotADirectoryError" in rec1["tracker_error"]
        assert first.cells[0][0].output == "Say a" and second.cells[0][0].output == "Say b"
        with workspace.db() as conn:
            citing = conn.execute("SELECT COUNT(*) FROM runs WHERE json_extract(record, '$.tracker_run_id') = ?",
                                  (cited,)).fetchone()[0]
        assert citing == 0
    finally:
        tracker.finish()
