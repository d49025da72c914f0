"""Replay runs in a snapshot of the workspace as it was at the run; a run's record names the
versions it created or resolved (tagged with its id), not what another process made meanwhile."""

from __future__ import annotations

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
