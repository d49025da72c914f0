"""Typed run records: every kind reads its row (old rows too, W&B ids under their old key),
writes it back unchanged, and every recorded run carries the environment and, from a notebook,
its path, hash and cell."""

from __future__ import annotations

import json
import sqlite3

from cellops.kernels_lib.records import (
    ChainRecord,
    PipelineRecord,
    PromptRecord,
    RagRecord,
    RunRecord,
    TrainingRecord,
)


def test_each_kind_reads_its_type_and_round_trips(workspace) -> None:
    rows = {
        "prompt": {"prompt": "qa@1", "model": "default", "messages": [{"role": "user", "content": "x"}],
                   "output": "y", "params": {"max_tokens": 4}, "cached": False, "latency_s": 0.2,
                   "tracker": "filetrack", "tracker_run_id": "file-notebook"},
        "rag": {"question": "q?", "index": "docs@2", "k": 2, "hits": [{"chunk": 3}], "output": "a"},
        "chain": {"chain": "c@1", "steps": [{"name": "s"}], "output": "o"},
        "finetune": {"config": {"seed": 7}, "base_uri": "default", "run_dir": "/r", "model": "m@1"},
        "pipeline": {"notebook": "/n.ipynb", "notebook_hash": "ab", "params": {"a": 1}, "values": {}},
        "rag-eval": {"index": "docs@2", "ndcg@10": 0.5},  # no type of its own: the base type
    }
    for kind, rec in rows.items():
        workspace.record_run(kind, rec, name="n", version=1)
    got = {r["kind"]: (r, RunRecord.from_row(r)) for r in workspace.list_runs()}
    types = {k: type(t) for k, (_, t) in got.items()}
    assert types == {"prompt": PromptRecord, "rag": RagRecord, "chain": ChainRecord,
                     "finetune": TrainingRecord, "pipeline": PipelineRecord, "rag-eval": RunRecord}
    for row, typed in got.values():
        assert typed.to_row() == row  # nothing lost, nothing added
        assert typed.env is not None and typed.env.python and "cellops" in typed.env.packages
        assert typed.env.hardware["cpus"] >= 1 and typed.env.hardware["memory_gb"] > 0
    assert (got["prompt"][1].tracker, got["prompt"][1].tracker_run_id) == ("filetrack", "file-notebook")
    rag = got["rag"][1]
    assert (rag.index, rag.k, rag.hits, rag.output) == ("docs@2", 2, [{"chunk": 3}], "a")
    assert got["finetune"][1].refs() == {"model": "m@1", "base_uri": "default"}
    assert got["finetune"][1].seeds() == {"config.seed": 7}
    pipe = got["pipeline"][1]
    assert pipe.notebook_path == "/n.ipynb" and pipe.notebook.content_hash == "ab"


def test_a_row_of_an_older_release_still_reads(workspace) -> None:
    old = {"id": "0123456789ab", "kind": "prompt", "name": "qa", "version": 3, "status": "ok",
           "created_at": 1.0, "record": {"prompt": "qa@3", "output": "hi", "params": "not a dict",
                                         "wandb_run_id": "k3x9a2b1"}}
    with sqlite3.connect(workspace.db_path) as conn:  # as written before records carried env
        conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (*[old[k] for k in ("id", "kind", "name", "version", "status", "created_at")],
                      json.dumps(old["record"])))
    row = workspace.get_run("0123456789ab")
    typed = RunRecord.from_row(row)
    assert isinstance(typed, PromptRecord) and typed.env is None and typed.notebook is None
    assert typed.prompt == "qa@3" and typed.params == {} and typed.extra == {"params": "not a dict"}
    assert (typed.tracker, typed.tracker_run_id) == ("wandb", "k3x9a2b1")  # W&B was the only tracker then
    assert typed.to_row() == row  # given back under its old key
