"""``%finetune resume`` trusts nothing its run folder says (a cloned workspace's run.json and
ds_config.json are its author's): every refusal is one line and comes before the launcher starts;
what it does pass on is rebuilt from the validated config. The full kill + resume is in
test_train_run.py; these runs are killed runs made by the real ``prepare`` (no training)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
from testsupport import killed_run, no_node_answers

from cellops.kernels_lib.errors import JobError, NotFoundError
from cellops.kernels_lib.train.plan import Plan, deepspeed_config
from cellops.kernels_lib.train.prepare import resolve_base
from cellops.kernels_lib.train.resume import prepare_resume, resume

launch_mod = importlib.import_module("cellops.kernels_lib.train.launch")  # the package exports launch()


def _nothing_started(job, events_before: int) -> bool:
    return (len(job.events()) == events_before and not (job.run_dir / "launch.json").exists()
            and not (job.run_dir / "supervisor.pid").exists())


def _edit(job, **changes) -> dict:
    spec = json.loads((job.run_dir / "run.json").read_text())
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            spec[outer] = {**spec[outer], inner: value}
        else:
            spec[key] = value
    (job.run_dir / "run.json").write_text(json.dumps(spec))
    return spec


def test_a_hostfile_needs_consent(zorbia_data: Path, workspace, tmp_path: Path, monkeypatch) -> None:
    """A cloned run's hostfile would send the launcher over ssh, with the user's keys, to hosts
    its author chose: refused until the user names the file; a run launched here (the same file,
    unchanged) needs no second consent, and an edited file needs it again."""
    no_node_answers(tmp_path, monkeypatch)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.3 slots=1\n")
    cloned = killed_run(workspace, zorbia_data, hostfile=hosts)
    n = len(cloned.events())
    with pytest.raises(JobError) as e:
        resume("zr", workspace)
    msg = str(e.value)
    assert "\n" not in msg and "not launched by you on this machine" in msg
    assert "%finetune resume zr --hostfile FILE" in msg and str(hosts) in msg
    assert _nothing_started(cloned, n)
    # the user names the file: the consent check passes and the hosts are checked as at launch
    with pytest.raises(JobError) as named:
        resume("zr", workspace, hostfile=str(hosts))
    assert "not launched by you" not in str(named.value)
    assert "127.0.0.3" in str(named.value) or "pdsh" in str(named.value)
    assert _nothing_started(cloned, n)

    other = tmp_path / "other"
    other.mkdir()
    hosts2 = other / "hosts"
    hosts2.write_text("127.0.0.3 slots=1\n")
    mine = killed_run(workspace, zorbia_data, name="zmine", hostfile=hosts2, launched_here=True)
    with pytest.raises(JobError) as trusted:
        resume("zmine", workspace)
    assert "not launched by you" not in str(trusted.value)  # reached the reachability check
    hosts2.write_text("127.0.0.3 slots=1\n203.0.113.9 slots=1\n")  # a `git pull` added a host
    with pytest.raises(JobError, match="not launched by you on this machine with that hostfile as it is now"):
        resume("zmine", workspace)
    assert _nothing_started(mine, 1)


def test_resume_rebuilds_run_json_and_ds_config_from_the_validated_config(
        zorbia_data: Path, workspace, tmp_path: Path) -> None:
    """run.json's paths and the folder's ds_config.json (whose profiler and offload settings write
    wherever they say) are replaced by what a fresh launch would write."""
    job = killed_run(workspace, zorbia_data)
    elsewhere = tmp_path / "elsewhere"
    _edit(job, workspace=str(elsewhere / ".cellops"), run_dir=str(elsewhere / "run"), base_path=str(elsewhere),
          wandb_id="ft-other", **{"plan.device": "cuda", "plan.world": 64})
    (job.run_dir / "ds_config.json").write_text(json.dumps(
        {"flops_profiler": {"enabled": True, "output_file": str(elsewhere / "written")},
         "zero_optimization": {"stage": 0, "offload_param": {"device": "nvme", "nvme_path": str(elsewhere)}}}))
    before = (job.run_dir / "run.json").stat().st_mtime_ns
    tracker = launch_mod.tracker_name(launch_mod.as_config({"name": "zr"}))
    workspace.update_run(job.run_id, tracker=tracker, tracker_run_id="run-7")  # what the first launch cited
    ready = prepare_resume("zr", workspace)
    spec = json.loads((job.run_dir / "run.json").read_text())
    assert spec == ready.spec and spec["tracker_run_id"] == "run-7"  # the resumed run continues it
    assert spec["workspace"] == str(workspace.root) and spec["run_dir"] == str(job.run_dir)
    assert spec["base_path"] == str(resolve_base("default", workspace)[1]) and spec["wandb_id"] == f"ft-{job.run_id}"
    assert spec["plan"]["device"] == "cpu" and spec["plan"]["world"] == 1
    ds = json.loads((job.run_dir / "ds_config.json").read_text())
    assert ds == deepspeed_config(Plan(**spec["plan"]), launch_mod.as_config(
        {k: v for k, v in spec["config"].items() if k not in ("learning_rate", "objective", "use_lora")}))
    assert "flops_profiler" not in ds and "offload_param" not in ds["zero_optimization"]
    assert (job.run_dir / "run.json").stat().st_mtime_ns == before and not elsewhere.exists()
    cmd = launch_mod.launcher_cmd(spec, job.run_dir, 29500, resume=True)
    assert "--hostfile" not in cmd and cmd[cmd.index("--run-dir") + 1] == str(job.run_dir)


def test_a_crafted_config_is_refused_in_one_line(zorbia_data: Path, workspace) -> None:
    job = killed_run(workspace, zorbia_data)
    good = json.loads((job.run_dir / "run.json").read_text())
    cases = [
        ({"config.procs": "2; touch /tmp/x"}, "procs must be int"),
        ({"config.lr": float("nan")}, "lr must be a finite number"),
        ({"config.lora_targets": "q_proj; import os"}, "lora_targets must be auto, all-linear"),
        ({"config.warmup_ratio": 5}, "warmup_ratio must be in"),
        ({"config.name": "other"}, "config names 'other', not 'zr'"),
        ({"name": "other"}, "run.json names run"),
        ({"plan.stage": 7}, "no ZeRO stage 0-3"),
        ({"base_hash": "0" * 64}, "is not the weights it started from"),
    ]
    for change, expected in cases:
        _edit(job, **change)
        with pytest.raises(JobError) as e:
            resume("zr", workspace)
        assert expected in str(e.value) and "\n" not in str(e.value), (change, str(e.value))
        (job.run_dir / "run.json").write_text(json.dumps(good))
    assert _nothing_started(job, 1)


def test_a_run_folder_that_leads_outside_is_refused(zorbia_data: Path, workspace, tmp_path: Path) -> None:
    """The ranks write checkpoints in the run folder and the Trainer deletes old ones: a link in
    it to elsewhere (git keeps symlinks) is refused; a run record naming another folder is not
    followed."""
    job = killed_run(workspace, zorbia_data)
    outside = tmp_path / "precious"
    (job.run_dir / "checkpoints").rename(outside)
    (job.run_dir / "checkpoints").symlink_to(outside)
    kept = sorted(p.name for p in outside.rglob("*"))
    with pytest.raises(JobError, match="checkpoints in run .* is a link to .*precious, outside the run folder"):
        resume("zr", workspace)
    assert sorted(p.name for p in outside.rglob("*")) == kept and _nothing_started(job, 1)

    crafted = tmp_path / "crafted" / job.run_id
    crafted.parent.mkdir()
    (job.run_dir / "checkpoints").unlink()
    outside.rename(job.run_dir / "checkpoints")
    job.run_dir.rename(crafted)
    with workspace.db(write=True) as conn:  # the record points at a folder outside the workspace
        conn.execute("UPDATE runs SET record=json_set(record, '$.run_dir', ?) WHERE id=?", (str(crafted), job.run_id))
    with pytest.raises(NotFoundError, match="no fine-tuning run named"):
        resume(job.run_id, workspace)
    assert not (crafted / "launch.json").exists()


def test_the_supervisor_and_ranks_never_import_from_the_run_folder(zorbia_data: Path, workspace, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m`` puts its working directory (the run folder) first on sys.path: modules planted
    there (json.py, a cellops/ package) must not run in the supervisor or the launched command."""
    job = killed_run(workspace, zorbia_data)
    marker = tmp_path / "planted-ran"
    plant = f"import pathlib; pathlib.Path({str(marker)!r}).mkdir(exist_ok=True)\n"
    (job.run_dir / "json.py").write_text(plant)
    (job.run_dir / "cellops").mkdir()
    (job.run_dir / "cellops" / "__init__.py").write_text(plant)
    (job.run_dir / ".deepspeed_env").write_text("LD_PRELOAD=/tmp/evil.so\n")
    # the real supervisor with the real environment; the launched command stands in for deepspeed's
    monkeypatch.setattr(launch_mod, "launcher_cmd", lambda *a: [sys.executable, "-c", "import json, sys; sys.exit(3)"])
    started = launch_mod._spawn(job, port=0, resume=True)
    assert started._popen.wait(timeout=120) == 0
    assert json.loads((job.run_dir / "exit.json").read_text())["code"] == 3  # the supervisor ran, and ran it
    assert not marker.exists() and not (job.run_dir / ".deepspeed_env").exists()

