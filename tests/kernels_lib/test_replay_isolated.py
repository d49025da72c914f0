"""Replay runs in a snapshot of the workspace as it was at the run; a run's record names the
versions it created or resolved (tagged with its id), not what another process made meanwhile."""

from __future__ import annotations

import json
from pathlib import Path

from test_pipelines import write_nb

from cellops.kernels_lib import pipelines, prompts

# a process outside the run (no CELLOPS_PIPELINE_RUN) saves a prompt while the run is going
STRANGER = ("import os, subprocess, sys\n"
            "env = {k: v for k, v in os.environ.items() if k != 'CELLOPS_PIPELINE_RUN'}\n"
            "subprocess.run([sys.executable, '-c', \"import cellops.kernels_lib.prompts as p; "
            "p.save('stranger', 'made by someone else')\"], env=env, check=True)")


def test_replay_resolves_versions_as_recorded(tmp_path: Path, workspace) -> None:
    prompts.save("other", "Hello {{ who }}")
    nb = write_nb(tmp_path / "iso.ipynb", [
        "text = 'Q: {{ q }}'",
        "import cellops\nv, created = cellops.prompts.save('qa', text)\nprint(v.ref, created)",
        "print(cellops.prompts.get('other').ref)",
        STRANGER,
    ])
    r = pipelines.run(nb)
    assert r.ok, r.error
    assert r.record["touched"]["prompt"] == ["other@1", "qa@1"]  # not stranger@1
    assert [v["name"] for v in r.record["versions_created"]] == ["qa"]
    assert [v["name"] for v in r.record["versions_used"]] == ["other"]
    assert [v.ref for v in workspace.list_versions("prompt")] == ["other@1", "qa@1", "stranger@1"]

    rep = pipelines.replay(r.id)
    # in the live workspace the save would say "qa@1 False" and the record would differ
    assert rep.matched, str(rep)
    assert [c.status for c in rep.cells] == ["match"] * 4
    replayed = workspace.get_run(rep.replay_run_id)["record"]
    assert replayed["touched"]["prompt"] == ["other@1", "qa@1"]
    assert Path(replayed["output_notebook"]).is_file()
    assert Path(replayed["output_notebook"]).is_relative_to(workspace.artifacts / "runs")
    # the live workspace is as before: the replay's versions stayed in its snapshot
    assert [v.ref for v in workspace.list_versions("prompt")] == ["other@1", "qa@1", "stranger@1"]
    assert not list((workspace.artifacts / ".staging").glob("*"))


def test_a_version_resolved_differently_is_a_mismatch(tmp_path: Path, workspace) -> None:
    prompts.save("other", "one")
    prompts.save("other", "two")
    nb = write_nb(tmp_path / "mv.ipynb", [
        "ref = 'other@1'",
        # the replay runs with CELLOPS_CACHE=off: this cell then resolves the other version,
        # silently (its output is the same)
        "import os, cellops\n_ = cellops.prompts.get(ref if os.environ.get('CELLOPS_CACHE') != 'off'"
        " else 'other@2')",
    ])
    r = pipelines.run(nb)
    assert r.record["touched"]["prompt"] == ["other@1"]
    rep = pipelines.replay(r.id)
    assert all(c.matched for c in rep.cells) and not rep.versions_match and not rep.matched
    assert "prompt versions differ: recorded other@1; replay other@2" in str(rep)


def test_volatile_masks_timing_columns_progress_and_logs() -> None:
    from cellops.kernels_lib import html
    from cellops.kernels_lib.pipelines.volatile import mask_tables

    def guard_table(ms: str, score: str = "0.40") -> tuple[str, str]:
        rows = [("injection", score, ms, "classifier"), ("pii", "1.00", "52.2", "1 EMAIL")]
        cols = ("check", "score", "ms", "reason")
        return html.text_table(cols, rows), html.table(cols, rows)

    (ta, ha), (tb, hb) = guard_table("1.1"), guard_table("1411.7")
    assert mask_tables(ta)[0] == mask_tables(tb)[0] and mask_tables(ha)[0] == mask_tables(hb)[0]
    assert mask_tables(ta)[1] == {"timing"}
    (tc, hc) = guard_table("1.1", score="0.41")  # a score is not a timing
    assert mask_tables(tc)[0] != mask_tables(ta)[0] and mask_tables(hc)[0] != mask_tables(ha)[0]
    bars = ("\rembed:  0%|  | 0/3\rembed: 100%|##| 3/3\n", "\rembed:  0%|  | 0/3\rembed: 50%|#| 1/3\rembed: 100%|##| 3/3\n")
    assert mask_tables(bars[0]) == mask_tables(bars[1]) and mask_tables(bars[0])[1] == {"progress"}
    log = "[2026-12-01 13:20:01,260] [WARNING] [real_accelerator.py:213:get_accelerator] CPU\nstep 1\n"
    assert mask_tables(log) == ("step 1\n", {"log"})


PAIRS = [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}]


def _hashes(root: Path) -> dict[str, str]:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _old_finetune_run(ws) -> Path:
    """A fine-tune's run folder as a finished run leaves it: files its writers append to or rewrite."""
    from cellops.kernels_lib.train import events
    from cellops.kernels_lib.train.launch import RUNS, runs_dir

    run_id = "0123456789ab"
    run_dir = runs_dir(ws, "zold") / run_id
    (run_dir / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (run_dir / "run.json").write_text(json.dumps({"name": "zold", "run_id": run_id}))
    (run_dir / "supervisor.log").write_bytes(b"started\n")
    events.append(run_dir / "events.jsonl", "launch", resume=False)
    ws.record_run(RUNS, {"run_dir": str(run_dir)}, name="zold", status="stopped", run_id=run_id)
    return run_dir


def test_a_replay_never_changes_a_live_artifact_file(tmp_path: Path, workspace) -> None:
    """The replayed notebook appends to an earlier fine-tune's event file and log (as %finetune
    stop/resume do) and reads a dataset version: in its snapshot, never in the live workspace."""
    from cellops.kernels_lib import datasets

    datasets.save("qa", PAIRS)
    _old_finetune_run(workspace)
    nb = write_nb(tmp_path / "writes.ipynb", [
        "name = 'zold'",
        "from cellops.kernels_lib.workspace import get_workspace\n"
        "from cellops.kernels_lib.train import events\n"
        "ws = get_workspace()\nrun = next((ws.artifacts / 'finetune' / name).iterdir())\n"
        "events.append(run / 'events.jsonl', 'stopped', by='notebook')\n"
        "with open(run / 'supervisor.log', 'ab') as f:\n    f.write(b'appended\\n')",
        "import cellops\nprint(len(cellops.datasets.get('qa').records()))",
    ])
    r = pipelines.run(nb)
    assert r.ok, r.error
    before = _hashes(workspace.artifacts)
    rep = pipelines.replay(r.id)
    assert rep.replay_status == "ok" and rep.cells[2].matched, str(rep)
    after = _hashes(workspace.artifacts)
    assert {k: after.get(k) for k in before} == before


def test_a_snapshot_links_only_files_nothing_writes_in_place(tmp_path: Path, workspace) -> None:
    """Version folders and the content-addressed hf-cache are hard-linked (no disk for weights);
    a write through any other file of the snapshot (an append, a rewrite) leaves the live one alone."""
    import os
    import time

    from cellops.kernels_lib import datasets
    from cellops.kernels_lib.pipelines.isolate import snapshot
    from cellops.kernels_lib.train import events

    v, _ = datasets.save("qa", PAIRS)
    run_dir = _old_finetune_run(workspace)
    cache = workspace.artifacts / "hf-cache" / "abcd"
    cache.mkdir(parents=True)
    (cache / "model.safetensors").write_bytes(b"weights")
    (workspace.artifacts / "reports").mkdir()
    (workspace.artifacts / "reports" / "report-1.html").write_text("<p>report</p>")
    before = _hashes(workspace.artifacts)
    iso = snapshot(workspace, time.time(), tmp_path / "iso")
    copy = iso.artifacts / run_dir.relative_to(workspace.artifacts)
    events.append(copy / "events.jsonl", "stopped")
    with open(copy / "supervisor.log", "ab") as f:
        f.write(b"more\n")
    (copy / "run.json").write_text("{}")
    with open(iso.artifacts / "reports" / "report-1.html", "a") as f:
        f.write("changed")
    assert _hashes(workspace.artifacts) == before
    assert not (copy / "checkpoints").exists()  # a replay never resumes another run's training
    rows = [p for p in v.path.rglob("*") if p.is_file()]
    assert rows and all(os.stat(p).st_ino == os.stat(iso.artifacts / p.relative_to(workspace.artifacts)).st_ino
                        for p in [*rows, cache / "model.safetensors"])
    assert os.stat(copy / "events.jsonl").st_ino != os.stat(run_dir / "events.jsonl").st_ino
