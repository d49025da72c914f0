"""``replay(run_id)``: re-execute a recorded run and compare its outputs cell by cell.

The replay runs the *stored copy* of the notebook (the file may have changed since) with the
recorded parameters and kernel, in a snapshot of the workspace as it was when the run started
(``isolate.snapshot``), so every version resolves as it did then; the versions the replay
touched must be the ones the run touched. Outputs are compared exactly; a cell whose outputs differ only
in fields that change on every run by nature (run ids, timings, timestamps, memory addresses,
widget ids, progress redraws; ``volatile.py``) is reported as "match (volatile)" with the
fields named. Greedy / seeded generation
on CPU is deterministic, so its text must match exactly.
"""

from __future__ import annotations

import difflib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .. import html
from ..errors import InvalidInputError, NotFoundError
from ..records import Environment, PipelineRecord, RunRecord
from ..workspace import Workspace, get_workspace
from . import notebook
from .execute import run_notebook
from .isolate import snapshot
from .replay_calls import KINDS as CALL_KINDS
from .replay_calls import CallReplay, replay_call
from .result import KIND, code_cells, normalized_outputs
from .volatile import is_progress_bar, mask, mask_tables


def _as_text(outputs: list[dict[str, Any]]) -> str:
    return json.dumps(outputs, indent=1, sort_keys=True, ensure_ascii=False)


@dataclass
class CellComparison:
    index: int
    source: str
    status: str  # match | match (volatile) | differs | not run
    volatile: list[str] = field(default_factory=list)
    diff: str = ""

    @property
    def matched(self) -> bool:
        return self.status.startswith("match")


@dataclass
class Replay:
    """The comparison of a run with its replay, cell by cell."""

    run_id: str
    replay_run_id: str
    original_status: str
    replay_status: str
    cells: list[CellComparison]
    notes: list[str] = field(default_factory=list)
    versions_match: bool = True  # the replay created and resolved the versions the run did

    @property
    def matched(self) -> bool:
        return (self.original_status == self.replay_status and self.versions_match
                and all(c.matched for c in self.cells))

    def to_dict(self) -> dict[str, Any]:
        return {"of": self.run_id, "replay": self.replay_run_id, "matched": self.matched,
                "cells": [c.__dict__ for c in self.cells], "notes": self.notes}

    def _rows(self) -> list[tuple[Any, ...]]:
        return [(c.index, c.source.splitlines()[0][:60] if c.source else "", c.status,
                 ", ".join(c.volatile)) for c in self.cells]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        verdict = "outputs match" if self.matched else "outputs DIFFER"
        head = (f"replay {self.replay_run_id} of run {self.run_id}: {verdict} "
                f"({sum(c.matched for c in self.cells)}/{len(self.cells)} cells)")
        text = "\n".join([head, html.text_table(("cell", "source", "status", "volatile"), self._rows()),
                          *self.notes, *(f"--- cell {c.index}\n{c.diff}" for c in self.cells if c.diff)])
        body = html.table(("cell", "source", "status", "volatile"), self._rows())
        body += "".join(f"<details><summary>cell {c.index} diff</summary>{html.pre(c.diff)}</details>"
                        for c in self.cells if c.diff)
        body += "".join(f"<p class='muted'>{html.escape(n)}</p>" for n in self.notes)
        return {"text/plain": text, "text/html": html.box("replay", body, head)}

    def __str__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]


def compare(original: Any, replayed: Any) -> list[CellComparison]:
    a, b = code_cells(original), code_cells(replayed)
    rows = []
    for i in range(max(len(a), len(b))):
        ca, cb = (a[i] if i < len(a) else None), (b[i] if i < len(b) else None)
        src = (ca or cb).source
        ran_a, ran_b = _ran(ca), _ran(cb)
        if not (ran_a and ran_b):
            status = "match" if ran_a == ran_b else "not run"
            rows.append(CellComparison(i, src, status if ran_a or ran_b else "match"))
            continue
        oa, ob = normalized_outputs(ca), normalized_outputs(cb)
        if oa == ob:
            rows.append(CellComparison(i, src, "match"))
            continue
        ta, hits_a = _masked(oa)
        tb, hits_b = _masked(ob)
        if ta == tb:
            rows.append(CellComparison(i, src, "match (volatile)", sorted(hits_a | hits_b)))
        else:
            diff = "\n".join(difflib.unified_diff(ta.splitlines(), tb.splitlines(), "recorded",
                                                  "replay", lineterm="", n=1))
            rows.append(CellComparison(i, src, "differs", diff=diff[:4000]))
    return rows


def _masked(outputs: list[dict[str, Any]]) -> tuple[str, set[str]]:
    """The outputs as text with volatile figures masked (``volatile``)."""
    hits: set[str] = set()

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            v, h = mask_tables(v)
            hits.update(h)
            return v
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return [walk(x) for x in v] if isinstance(v, list) else v

    kept = [o for o in outputs if not _bar(o)]
    if len(kept) < len(outputs):
        hits.add("progress")
    text, h = mask(_as_text(walk(kept)))
    return text, hits | h


def _bar(output: dict[str, Any]) -> bool:
    data = output.get("data") or {}
    return list(data) == ["text/plain"] and is_progress_bar(str(data["text/plain"]))


def _ran(cell: Any) -> bool:
    if cell is None:
        return False
    status = cell.get("metadata", {}).get("papermill", {}).get("status")
    return status in (None, "completed", "failed", "running") and (
        cell.get("execution_count") is not None or bool(cell.get("outputs")))


def replay(run_id: str, *, workspace: Workspace | None = None,
           timeout: float | None = None) -> Replay | CallReplay:
    """Re-execute run ``run_id`` from its record and compare: a pipeline run cell by cell, a
    prompt or rag run by its output (``replay_calls``)."""
    import nbformat

    ws = workspace or get_workspace()
    original = ws.get_run(run_id)
    if original["kind"] in CALL_KINDS:
        return replay_call(ws, original)
    rec = RunRecord.from_row(original)
    if not isinstance(rec, PipelineRecord) or not rec.source_copy:
        steps = rec.extra.get("steps")
        if isinstance(steps, dict) and steps:
            ids = ", ".join(s["run_id"] for s in steps.values() if s.get("run_id"))
            raise InvalidInputError(f"run {rec.id} is a chain; replay its steps: {ids}")
        raise InvalidInputError(f"run {rec.id} is a {rec.kind} run: replay replays "
                                f"pipeline, prompt and rag runs")
    src = Path(rec.source_copy)
    if not src.is_file():  # the copy is all a replay needs
        raise NotFoundError(f"run {rec.id}'s source copy {src.name} is gone from "
                            f"{rec.run_dir}; run the notebook again with `cellops run`")
    done = _executed_notebook(rec, src)
    notes = [] if done is not None else [
        f"run {rec.id} ({rec.status}) left no executed notebook: replayed from its "
        "source copy, with nothing to compare its cells against"]
    path = rec.notebook_path
    if path and Path(path).is_file() and notebook.file_hash(path) != rec.notebook_hash:
        notes.append(f"{path} changed since the run; replayed the recorded copy")
    new = cast(PipelineRecord, RunRecord.from_row(ws.get_run(_run_isolated(ws, rec, src, timeout))))
    notes += _env_notes(rec.env, new.env)
    replayed = new.output_notebook_run_dir or new.output_notebook
    if replayed is None:
        cells: list[CellComparison] = []
        notes.append("the replay produced no notebook: " + str((new.extra.get("error") or {}).get("message")))
    else:
        recorded = nbformat.read(done, as_version=4) if done else nbformat.v4.new_notebook()
        cells = compare(recorded, nbformat.read(replayed, as_version=4))
    versions = _version_notes(rec.touched, new.touched)
    result = Replay(rec.id, new.id, rec.status, new.status, cells, notes + versions,
                    versions_match=not versions)
    ws.update_run(new.id, replay=result.to_dict())
    return result


def _run_isolated(ws: Workspace, rec: PipelineRecord, src: Path, timeout: float | None) -> str:
    """Run the recorded copy in a snapshot of the workspace as it was when the run started (so
    versions resolve as they did then), then file the replay's record and folder in ``ws``."""
    started = rec.started_at or rec.created_at
    tmp = ws.staging_dir()  # swept if this process dies mid-replay
    try:
        iso = snapshot(ws, started, tmp / "workspace")
        new = run_notebook(src, dict(rec.given_params), timeout=timeout or rec.timeout,
                  kernel_name=rec.kernel.get("name", "python3"), workspace=iso,
                  cwd=Path(rec.cwd or src.parent), name=rec.name,
                  extra={"replay_of": rec.id, "isolated_at": started},
                  kernel_env={**rec.kernel_env, "CELLOPS_CACHE": "off"})  # re-generate
        moved = ws.artifacts / "runs" / new.id
        moved.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(iso.artifacts / "runs" / new.id), moved)
        record = json.loads(json.dumps(new.record, default=str).replace(
            json.dumps(str(iso.artifacts / "runs" / new.id))[1:-1], json.dumps(str(moved))[1:-1]))
        return ws.record_run(KIND, record, name=rec.name, status=new.status, run_id=new.id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _version_notes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Versions (per kind) the run touched that its replay did not, and the reverse."""
    out = []
    for kind in sorted(set(a) | set(b)):
        ra, rb = set(a.get(kind, [])), set(b.get(kind, []))
        if ra != rb:
            out.append(f"{kind} versions differ: recorded {', '.join(sorted(ra)) or '-'}; "
                       f"replay {', '.join(sorted(rb)) or '-'}")
    return out


def _executed_notebook(rec: PipelineRecord, src: Path) -> Path | None:
    """The run's executed notebook: the recorded one, else the partial notebook papermill was
    writing in the run folder when the run was killed, else None."""
    for p in (rec.output_notebook_run_dir, rec.output_notebook,
              Path(rec.run_dir or src.parent) / src.name.replace(".source.ipynb", ".ipynb")):
        if p and Path(p).is_file() and Path(p) != src:
            return Path(p)
    return None


def _env_notes(a: Environment | None, b: Environment | None) -> list[str]:
    notes = []
    pa, pb = (dict(a.packages) if a else {}), (dict(b.packages) if b else {})
    changed = [f"{k} {pa.get(k)} -> {pb.get(k)}" for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
    if changed:
        notes.append("packages changed: " + "; ".join(changed))
    if (a.hardware.get("gpus") if a else None) != (b.hardware.get("gpus") if b else None):
        notes.append("hardware changed (GPUs differ): GPU kernels may not match bit for bit")
    return notes
