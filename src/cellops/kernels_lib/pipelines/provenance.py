"""The "where" and "with what" of a reproducibility record.

(The environment, python, package versions and hardware, is ``records.environment()``.)
``touched()``: what the notebook read or
made in the workspace: runs its kernel recorded and versions it created or resolved (both tagged
with the pipeline run id by ``Workspace``), and from those records
the prompt / model / index / guard policy / dataset versions, seeds and tracker runs (W&B or a plugin tracker).
"""

from __future__ import annotations

from typing import Any

from ..records import REF_KINDS as _REF_KINDS
from ..records import RunRecord
from ..workspace import Workspace


def touched(ws: Workspace, run_id: str) -> dict[str, Any]:
    """Runs and versions the pipeline's kernel recorded, created or resolved: everything tagged
    with ``run_id`` (``Workspace.record_run`` and table run_versions), never merely everything
    made while it ran, since other processes may share the workspace."""
    import json

    with ws.db() as conn:
        run_rows = conn.execute(
            "SELECT id, kind, name, version, status, created_at, record FROM runs WHERE kind != 'pipeline' "
            "AND json_extract(record, '$.pipeline_run') = ? ORDER BY created_at", (run_id,),
        ).fetchall()
        version_rows = conn.execute(
            "SELECT kind, name, version, hash, action FROM run_versions WHERE run_id = ? "
            "ORDER BY at", (run_id,),
        ).fetchall()

    runs, refs, seeds, tracked = [], {}, {}, set()
    for r in run_rows:
        typed = RunRecord.from_row(dict(r) | {"record": json.loads(r["record"])})
        runs.append({"id": r["id"], "kind": r["kind"], "name": r["name"], "version": r["version"],
                     "status": r["status"]})
        if r["name"] and r["version"] is not None:
            refs.setdefault(r["kind"], set()).add(f"{r['name']}@{r['version']}")
        for key, val in typed.refs().items():
            refs.setdefault(_REF_KINDS[key], set()).add(val)
        seeds |= {f"{r['kind']}:{r['id']}:{k}": v for k, v in typed.seeds().items()}
        if typed.tracker_run_id:
            tracked.add((typed.tracker or "", typed.tracker_run_id))
    created = [{"kind": v["kind"], "name": v["name"], "version": v["version"], "hash": v["hash"]}
               for v in version_rows if v["action"] == "created"]
    used = sorted({(v["kind"], v["name"], v["version"], v["hash"]) for v in version_rows
                   if v["action"] != "created"})
    for kind, name, version, _ in [*((v["kind"], v["name"], v["version"], 0) for v in created), *used]:
        refs.setdefault(kind, set()).add(f"{name}@{version}")
    return {"runs": runs, "versions_created": created,
            "versions_used": [{"kind": k, "name": n, "version": v, "hash": h} for k, n, v, h in used],
            "touched": {k: sorted(v) for k, v in sorted(refs.items())},
            "seeds": seeds,
            "tracker_runs": [{"tracker": t, "run_id": i} for t, i in sorted(tracked)]}

