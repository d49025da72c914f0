"""A fine-tune's experiment tracker: the one on the Registry (``cellops.trackers``) its run spec
names, fed by rank 0 of the worker.

``launch`` resolves the name in the kernel (``--tracker``, else ``%config Cellops.tracker`` /
``CELLOPS_TRACKER`` / ``wandb``; an unknown name stops the launch in one line) and writes it into
``run.json``. In the worker, :func:`callbacks` starts that tracker when training begins (W&B:
offline run ``ft-<run id>`` in the run folder, continued on resume, as the launcher's
``WANDB_*`` variables say; any other tracker whose ``start`` takes ``resume_id`` is handed the run
the first launch began, which resume reads from the workspace record), cites its run in the workspace record, logs every Trainer log
(``train/loss``, ``train/grad_norm``, ``eval/loss``, ...) and :func:`finish` adds the before/after
samples table and the summary, then closes the run.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..workspace import get_workspace


def name_of(spec: dict[str, Any]) -> str | None:
    """The tracker a run logs to; a run folder written before trackers were pluggable says only
    whether W&B was on."""
    return spec.get("tracker") or ("wandb" if spec.get("wandb") else None)


def _tracker(spec: dict[str, Any]) -> Any:
    from ..tracking import trackers

    name = name_of(spec)
    return trackers.get(name) if name else None


def log_keys(logs: dict[str, Any]) -> dict[str, float]:
    """Trainer logs under W&B's usual names (as transformers' WandbCallback wrote them):
    ``eval_loss`` -> ``eval/loss``, ``loss`` -> ``train/loss``; numbers only."""
    out = {}
    for k, v in logs.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[f"eval/{k[5:]}" if k.startswith("eval_") else f"train/{k}"] = v
    return out


def start(tracker: Any, spec: dict[str, Any]) -> str | None:
    """Start the run's tracker; a resumed run (``spec['tracker_run_id']``) continues its tracker
    run when the tracker's ``start`` takes ``resume_id`` (trackers without it start a new run)."""
    kw: dict[str, Any] = {"job_type": "finetune", "config": spec["config"]}
    prior = spec.get("tracker_run_id")
    if prior and "resume_id" in inspect.signature(tracker.start).parameters:
        kw["resume_id"] = prior
    return tracker.start(Path(spec["workspace"]), **kw)


def callbacks(spec: dict[str, Any], rank: int) -> list[Any]:
    """[a TrainerCallback logging to the run's tracker] on rank 0 when the run has one, else []."""
    tracker = _tracker(spec) if rank == 0 else None
    if tracker is None:
        return []
    from transformers import TrainerCallback

    class TrackerCallback(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
            run_id = start(tracker, spec)
            get_workspace(spec["workspace"]).update_run(
                spec["run_id"], tracker=name_of(spec) if run_id else None, tracker_run_id=run_id)

        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            data = log_keys(logs or {})
            if data:
                tracker.log(data | {"train/global_step": state.global_step})

    return [TrackerCallback()]


def finish(spec: dict[str, Any], metrics: dict[str, Any], samples: list[dict[str, Any]]) -> dict[str, str | None]:
    """Samples table + summary into the run's tracker, then close it; the card's citation."""
    tracker = _tracker(spec)
    run_id = getattr(tracker, "run_id", None)
    if tracker is None or run_id is None:
        return {"tracker": None, "tracker_run_id": None}
    cols = ["line", "prompt", "reference", "before", "after"]
    rows = [[s["line"], s["messages"][-1]["content"], s["reference"], s["before"], s["after"]] for s in samples]
    tracker.log({}, tables={"samples": (cols, rows)})
    tracker.summary({k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)})
    tracker.finish()  # a tracker that fails says so itself (wandb_log warns once); the model stays
    failed = getattr(tracker, "failed", False)
    return {"tracker": None if failed else name_of(spec), "tracker_run_id": None if failed else run_id}
