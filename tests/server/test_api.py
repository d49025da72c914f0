"""The /cellops/api/ server extension against a real jupyter server and real workspaces."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from cellops.kernels_lib import prompts
from cellops.kernels_lib.workspace import Workspace, get_workspace


def new_dir(server) -> tuple[str, Path]:
    rel = f"t{uuid.uuid4().hex[:8]}"
    d = server.root / rel
    d.mkdir()
    return rel, d


def make_ws(server) -> tuple[str, Workspace]:
    rel, d = new_dir(server)
    return rel, get_workspace(d / ".cellops")


def test_requests_without_a_valid_token_are_refused(server):
    rel, _ = make_ws(server)
    for path in ("status", "prompts", "runs", "file"):
        assert server.get(path, token=None, dir=rel).status_code == 403
        assert server.get(path, token="wrong", dir=rel).status_code == 403
    assert server.get("status", dir=rel).status_code == 200


def test_folder_without_workspace_gives_empty_lists_and_creates_nothing(server):
    rel, d = new_dir(server)
    st = server.get("status", dir=rel).json()
    assert st["exists"] is False and st["counts"] == {}
    for path in ("prompts", "runs", "indexes", "models", "datasets", "jobs", "schedules"):
        r = server.get(path, dir=rel)
        assert r.status_code == 200, r.text
        assert r.json() == []
    assert not (d / ".cellops").exists()


def test_prompts_versions_detail_and_diff(server):
    rel, ws = make_ws(server)
    prompts.save("greet", "Say hello to {{ name }}.", params={"max_tokens": 8}, workspace=ws)
    prompts.save("greet", "Say hello warmly to {{ name }}.", workspace=ws)
    prompts.save("other", "Hi", workspace=ws)
    ws.set_alias("prompt", "greet@1", "prod")

    listed = {p["name"]: p for p in server.get("prompts", dir=rel).json()}
    assert sorted(listed) == ["greet", "other"]
    g = listed["greet"]
    assert g["latest"] == 2 and [v["version"] for v in g["versions"]] == [1, 2]
    assert g["template"] == "Say hello warmly to {{ name }}."
    assert g["versions"][0]["aliases"] == ["prod"]

    detail = server.get("prompts/greet", dir=rel).json()
    assert detail["versions"][0]["params"] == {"max_tokens": 8}
    assert detail["runs"] == []

    diff = server.get("prompts/greet/diff", dir=rel, a="1", b="2").json()
    assert diff["a"] == "greet@1" and diff["b"] == "greet@2"
    assert "-Say hello to {{ name }}." in diff["diff"]
    assert "+Say hello warmly to {{ name }}." in diff["diff"]
    assert diff["diff"] == prompts.diff("greet@1", "greet@2", ws)  # same text as %prompt diff

    missing = server.get("prompts/nope", dir=rel)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    bad = server.get("prompts/greet/diff", dir=rel, a="1", b="9")
    assert bad.status_code == 404 and "versions: 1, 2" in bad.json()["error"]


def test_runs_show_params_metrics_and_record(server):
    rel, ws = make_ws(server)
    rid = ws.record_run("prompt", {"params": {"temperature": 0.2}, "latency_s": 0.5,
                                   "completion_tokens": 7, "model": "default", "output": "hi",
                                   "blocked": False}, "greet", 1)
    ws.record_run("eval", {"metrics": {"recall@5": 0.8}, "config": {"k": 5}, "wandb_run_id": "w1"}, "qa", 2,
                  status="error")  # a row of a release before pluggable trackers
    runs = server.get("runs", dir=rel).json()
    assert [r["kind"] for r in runs] == ["eval", "prompt"]  # newest first
    ev, pr = runs
    assert (ev["tracker"], ev["tracker_run_id"]) == ("wandb", "w1") and pr["tracker_run_id"] is None
    assert ev["metrics"] == {"recall@5": 0.8} and ev["params"] == {"k": 5} and ev["status"] == "error"
    assert pr["params"] == {"temperature": 0.2}
    assert pr["metrics"] == {"latency_s": 0.5, "completion_tokens": 7}  # bools are not metrics
    assert [r["id"] for r in server.get("runs", dir=rel, kind="prompt").json()] == [rid]
    assert len(server.get("runs", dir=rel, limit="1").json()) == 1

    one = server.get(f"runs/{rid[:6]}", dir=rel).json()  # id prefix, as in `cellops runs`
    assert one["id"] == rid and one["record"]["output"] == "hi"
    assert server.get("runs/zzzz", dir=rel).status_code == 404
    assert server.get("runs", dir=rel, limit="many").status_code == 400


def test_traces_list_and_one_trace_with_its_spans(server):
    from cellops.kernels_lib.tracking import Trace, traces

    rel, ws = make_ws(server)
    assert server.get("traces", dir=rel).json() == []
    t = Trace("prompt greet@1")
    with t.span("generate", kind="llm", **{"gen_ai.usage.output_tokens": 4, "output.value": "<b>hi</b>"}):
        pass
    traces.save(ws, t, run_id="r1")
    bad = Trace("rag ask kb@1")
    bad.end(status="error")
    traces.save(ws, bad)
    listed = server.get("traces", dir=rel).json()
    assert [x["name"] for x in listed] == ["rag ask kb@1", "prompt greet@1"]
    assert [x["trace_id"] for x in server.get("traces", dir=rel, status="error").json()] == [bad.trace_id]
    assert [x["name"] for x in server.get("traces", dir=rel, name="prompt").json()] == ["prompt greet@1"]
    one = server.get(f"traces/{t.trace_id[:8]}", dir=rel).json()
    assert one["trace_id"] == t.trace_id and one["summary"]["run_id"] == "r1"
    assert [s["name"] for s in one["spans"]] == ["prompt greet@1", "generate"]
    assert one["spans"][1]["parent_id"] == one["spans"][0]["span_id"]
    assert one["spans"][1]["attributes"]["output.value"] == "<b>hi</b>"  # JSON: the panel escapes
    assert server.get("traces/abcdef12", dir=rel).status_code == 404
    assert server.get("traces", dir=rel, since="soon").status_code == 400


def _artifact(ws: Workspace, files: dict[str, bytes]) -> Path:
    d = ws.staging_dir()
    for name, data in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    return d


def test_indexes_and_models_with_sizes_and_cards(server):
    rel, ws = make_ws(server)
    ws.save_version("index", "docs", {"chunks": 12, "embedder": "default"},
                    artifact=_artifact(ws, {"vectors.npy": b"x" * 1000, "meta/chunks.jsonl": b"y" * 24}))
    card = {"base_model": "default", "method": "lora", "eval_loss_after": 1.5}
    ws.save_version("model", "tuned", {"format": "hf", "subdir": "model"},
                    artifact=_artifact(ws, {"card.json": json.dumps(card).encode(),
                                            "model/weights.bin": b"w" * 4096}))
    (idx,) = server.get("indexes", dir=rel).json()
    assert idx["ref"] == "docs@1" and idx["size_bytes"] == 1024 and idx["files"] == 2
    assert idx["content"]["chunks"] == 12
    (mod,) = server.get("models", dir=rel).json()
    assert mod["ref"] == "tuned@1" and mod["card"] == card
    assert mod["size_bytes"] == 4096 + len(json.dumps(card))
    st = server.get("status", dir=rel).json()
    assert st["exists"] and st["counts"] == {"index": 1, "model": 1, "runs": 0}


def test_datasets_with_their_cards(server):
    from cellops.kernels_lib import datasets

    rel, ws = make_ws(server)
    datasets.save("pairs", [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."},
                            {"prompt": "x", "chosen": "y"}], workspace=ws)
    (ds,) = server.get("datasets", dir=rel).json()
    assert ds["ref"] == "pairs@1" and ds["content"]["format"] == "preference"
    assert ds["card"]["rows"] == 1 and ds["card"]["bad_rows"][0]["line"] == 1
    assert ds["size_bytes"] > 0 and ds["files"] == 2


def _events(path: Path, *lines: dict, torn: str = "") -> None:
    with open(path, "a") as f:
        for ev in lines:
            f.write(json.dumps(ev) + "\n")
        f.write(torn)


def test_finetune_jobs_follow_the_event_file(server):
    rel, ws = make_ws(server)
    run_dir = ws.artifacts / "runs" / "ft1"
    run_dir.mkdir(parents=True)
    rid = ws.record_run("finetune", {"run_dir": str(run_dir), "base_uri": "default"}, "tiny",
                        status="running")
    ev = run_dir / "events.jsonl"
    _events(ev, {"t": 1, "kind": "start", "max_steps": 10},
            {"t": 2, "kind": "log", "step": 5, "loss": 2.5}, torn='{"t": 3, "kind": "lo')
    (job,) = server.get("jobs", dir=rel).json()
    assert job["id"] == rid and job["running"] is True and job["status"] == "running"
    assert job["step"] == 5 and job["max_steps"] == 10 and job["progress"] == 0.5
    assert job["loss"] == 2.5 and job["base_model"] == "default"

    with open(ev, "a") as f:  # the writer finishes its line, then the job ends
        f.write('g", "step": 10, "loss": 1.25}\n')
    _events(ev, {"t": 4, "kind": "done", "eval_loss_after": 1.1})
    detail = server.get(f"jobs/{rid}", dir=rel, since="1").json()
    assert detail["status"] == "done" and detail["running"] is False and detail["progress"] == 1.0
    assert [e["kind"] for e in detail["events"]] == ["log", "log", "done"] and detail["next"] == 4
    assert detail["summary"]["losses"] == [[5, 2.5], [10, 1.25]]


def test_job_events_outside_the_workspace_are_not_read(server, tmp_path):
    rel, ws = make_ws(server)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _events(outside / "events.jsonl", {"kind": "start", "max_steps": 4}, {"kind": "log", "step": 4})
    ws.record_run("finetune", {"run_dir": str(outside)}, "x", status="running")
    (job,) = server.get("jobs", dir=rel).json()
    assert job["has_events"] is False and job["step"] == 0 and job["status"] == "running"


def test_schedules_list_is_empty_for_a_fresh_workspace(server):
    rel, _ = make_ws(server)
    r = server.get("schedules", dir=rel)
    assert r.status_code == 200 and r.json() == []


def test_files_inside_the_workspace_only(server):
    rel, ws = make_ws(server)
    ws.save_version("model", "m", {"format": "hf"}, artifact=_artifact(ws, {"card.json": b'{"a": 1}'}))
    ok = server.get("file", dir=rel, path="artifacts/model/m/v1/card.json")
    assert ok.status_code == 200 and json.loads(ok.json()["text"]) == {"a": 1}
    secret = server.root / "secret.txt"
    secret.write_text("top secret")
    (ws.root / "link.txt").symlink_to(secret)
    for path in ("../../secret.txt", str(secret), "/etc/passwd", "link.txt", "artifacts/../../x"):
        r = server.get("file", dir=rel, path=path)
        assert r.status_code == 403, (path, r.text)
        assert "outside the workspace" in r.json()["error"]
        assert "top secret" not in r.text
    assert server.get("file", dir=rel, path="artifacts/none.json").status_code == 404


def test_folders_outside_the_server_root_are_refused(server):
    for d in ("..", "../..", "sub/../../.."):
        r = server.get("prompts", dir=d)
        assert r.status_code == 403 and "outside the server root" in r.json()["error"]


def test_corrupt_database_gives_a_clear_error_and_the_server_keeps_running(server):
    rel, d = new_dir(server)
    (d / ".cellops").mkdir()
    (d / ".cellops" / "cellops.db").write_bytes(b"this is not sqlite at all" * 100)
    for path in ("status", "prompts", "runs"):
        r = server.get(path, dir=rel)
        assert r.status_code == 500
        msg = r.json()["error"]
        assert "cellops.db" in msg and "move it aside" in msg and "\n" not in msg
    good_rel, ws = make_ws(server)
    prompts.save("p", "hello", workspace=ws)
    assert [p["name"] for p in server.get("prompts", dir=good_rel).json()] == ["p"]
    assert server.proc.poll() is None


@pytest.mark.parametrize("path", ["", "status"])
def test_index_and_unknown_endpoints(server, path):
    r = server.get(path)
    assert r.status_code == 200
    assert server.get("nonsense").status_code == 404


def test_schedules_come_from_the_pipelines_store(server):
    import nbformat

    from cellops.kernels_lib.pipelines import schedules

    rel, ws = make_ws(server)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("limit = 5")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(limit)")]
    path = server.root / rel / "nightly.ipynb"
    nbformat.write(nb, path)
    schedules.add(path, cron="0 3 * * *", params={"limit": 7}, workspace=ws)
    schedules.add(path, every=60, name="often", workspace=ws)
    schedules.pause("often", workspace=ws)
    got = {s["name"]: s for s in server.get("schedules", dir=rel).json()}
    assert got["nightly"]["trigger"] == "cron 0 3 * * *" and got["nightly"]["paused"] is False
    assert got["nightly"]["params"] == {"limit": 7} and got["nightly"]["next_run"]
    assert got["often"]["trigger"] == "every 60s" and got["often"]["paused"] is True
