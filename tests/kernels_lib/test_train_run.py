"""Real DeepSpeed runs on the embedded SmolLM2 (CPU, DS_ACCELERATOR=cpu, gloo): kill + resume from
the last checkpoint, the 2-process launch with ZeRO-2, and a launcher that dies. Steps, lengths
and samples are tiny so each run is dominated by process start-up."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

import cellops
from cellops.kernels_lib.errors import JobError
from cellops.kernels_lib.train import attach, launch, op_builds, resume, shm

pytestmark = pytest.mark.slow
TINY = dict(batch=1, max_len=48, samples=1, sample_tokens=4, eval_split=0.25)


def _launch_port(job) -> int:  # noqa: ANN001
    return next(e["port"] for e in job.events() if e["kind"] == "launch")


def _procs_of(run_dir: Path) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if str(run_dir) in (p / "cmdline").read_bytes().decode(errors="replace"):
                    out.append(int(p.name))
            except OSError:
                continue
    return out


def _wait_for(job, kind: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [e for e in job.events() if e["kind"] == kind]
        if hits:
            return hits[-1]
        assert job.status in ("starting", "running"), job.error
        time.sleep(0.5)
    raise AssertionError(f"no {kind} event after {timeout}s")


class _Planted:
    """Unpickling this creates ``marker``: what a crafted checkpoint in a cloned workspace could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.makedirs, (str(self.marker),))


def _crafted_checkpoint_is_refused(job, workspace, tmp_path: Path) -> None:
    """Each torch file of the last checkpoint in turn replaced by one that runs code: resume refuses
    it in one line, nothing starts, nothing runs; then the real files go back."""
    import subprocess
    import sys

    import torch

    from cellops.kernels_lib.train.job import last_checkpoint

    ckpt = last_checkpoint(job.run_dir / "checkpoints")
    targets = [next(ckpt.glob("global_step*/mp_rank_00_model_states.pt")), ckpt / "rng_state.pth", ckpt / "scheduler.pt"]
    marker = tmp_path / "ran"
    for f in targets:
        keep = f.with_name(f.name + ".keep")
        f.replace(keep)
        torch.save({"module": _Planted(marker), "x": torch.zeros(1)}, f)
        events_before = len(job.events())
        with pytest.raises(JobError, match=f"refusing to resume: .*{f.name} holds os.makedirs") as e:
            resume("zres", workspace)
        assert "\n" not in str(e.value)
        assert not marker.exists() and len(job.events()) == events_before and job.status == "failed"
        keep.replace(f)
    # the worker's own layer: every torch.load in a rank is weights-only, DeepSpeed's explicit False too
    evil = tmp_path / "evil.pt"
    torch.save(_Planted(marker), evil)
    probe = ("import sys, torch; from cellops.kernels_lib.train.safe_load import force_weights_only; "
             "force_weights_only(); torch.load(sys.argv[1], weights_only=False)")
    r = subprocess.run([sys.executable, "-c", probe, str(evil)], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "UnpicklingError" in r.stderr and not marker.exists()


def test_kill_then_resume_from_last_checkpoint(zorbia_data: Path, workspace, tmp_path: Path) -> None:
    job = cellops.finetune.launch({"name": "zres", "data": str(zorbia_data), "max_steps": 4, "save_every": 2,
                                   "eval_split": 0, "samples": 1, "sample_tokens": 4, "batch": 1,
                                   "max_len": 48}, workspace)
    ckpt = _wait_for(job, "checkpoint")
    assert ckpt["step"] == 2 and (Path(ckpt["path"]) / "cellops_config.json").exists()
    states = next(Path(ckpt["path"]).glob("global_step*/mp_rank_00_model_states.pt"))
    assert states.stat().st_size < 20 * 2**20  # adapter + optimizer, not the frozen tied lm_head
    pgid = int((job.run_dir / "supervisor.pid").read_text())
    os.killpg(pgid, signal.SIGKILL)  # the whole job dies at once: no goodbye event
    deadline = time.monotonic() + 30
    while _procs_of(job.run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _procs_of(job.run_dir) == []
    # no supervisor was left to clean up: the rank released DeepSpeed's shared memory itself
    assert shm.segments(_launch_port(job)) == []
    assert job.status == "failed" and "%finetune resume zres" in job.error
    with pytest.raises(JobError, match="failed"):
        job.wait()
    # a fresh handle (as after a kernel restart) sees the same state, then resumes
    again = attach("zres", workspace)
    assert again.run_id == job.run_id and again.status == "failed"
    _crafted_checkpoint_is_refused(again, workspace, tmp_path)
    resumed = resume("zres", workspace).wait(timeout=900)
    assert resumed.status == "done" and resumed.model == "zres@1"
    evs = resumed.events()
    res = [e for e in evs if e["kind"] == "resume"]
    assert len(res) == 1 and res[0]["step"] >= 2 and res[0]["max_steps"] == 4
    steps_after = [e["step"] for e in evs[evs.index(res[0]):] if e["kind"] == "log"]
    assert steps_after and min(steps_after) > res[0]["step"] and max(steps_after) == 4
    assert resumed.metrics["steps"] == 4
    assert workspace.get_run(job.run_id)["status"] == "done"
    with pytest.raises(JobError, match="already finished as zres@1"):
        resume("zres", workspace)


def test_two_process_launch_with_zero2(zorbia_data: Path, workspace) -> None:
    # a build killed mid-way left its lock: without the sweep every rank would wait on it for ever
    lock = op_builds.build_root() / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    old = time.time() - op_builds.STALE_AFTER_S - 60
    os.utime(lock, (old, old))
    job = launch({"name": "ztwo", "data": str(zorbia_data), "max_steps": 2, "procs": 2, "zero": "2",
                  "save_every": 0, **TINY}, workspace)
    assert job.plan["world"] == 2 and job.plan["stage"] == 2
    launched = next(e for e in job.events() if e["kind"] == "launch")
    cmd = launched["cmd"]
    assert cmd[0].endswith("deepspeed") and cmd[1:3] == ["--num_gpus", "2"]
    assert launched["removed_stale_locks"] == [str(lock)]
    job.wait(timeout=900)
    assert job.status == "done" and job.model == "ztwo@1"
    start = next(e for e in job.events() if e["kind"] == "start")
    assert start["world"] == 2
    m = job.metrics
    assert len(m["peak_rss_gb"]) == 2 and all(0.3 < g < 8 for g in m["peak_rss_gb"])
    assert m["eval_loss_before"] is not None and m["eval_loss_after"] is not None
    log = (job.run_dir / "launcher.log").read_text()
    assert "dist_world_size=2" in log and "Traceback" not in log
    assert shm.segments(_launch_port(job)) == []  # DeepSpeed's per-rank /dev/shm segments are gone
    ds = json.loads((job.run_dir / "ds_config.json").read_text())
    assert ds["zero_optimization"]["stage"] == 2


def test_full_finetune_registers_merged_weights_that_answer(zorbia_data: Path, workspace) -> None:
    job = launch({"name": "zfull", "data": str(zorbia_data), "method": "full", "max_steps": 2, "lr": 1e-4,
                  "save_every": 0, **TINY}, workspace)
    job.wait(timeout=900)
    assert job.status == "done" and job.model == "zfull@1"
    m = job.metrics
    assert m["eval_loss_after"] < m["eval_loss_before"]  # every weight trained, on the held-out split
    folder = workspace.artifact_dir("model", "zfull", 1)
    card = json.loads((folder / "card.json").read_text())
    assert card["config"]["method"] == "full" and not (folder / "adapter").exists()
    assert (folder / "model" / "model.safetensors").exists()
    g = cellops.generate("What is the capital of Zorbia?", model=job.model, max_tokens=6, workspace=workspace)
    assert g.completion_tokens > 0 and g.text.strip()


def test_stop_ends_every_process_and_keeps_the_folder(zorbia_data: Path, workspace) -> None:
    job = launch({"name": "zstop", "data": str(zorbia_data), "max_steps": 500, "save_every": 0, **TINY}, workspace)
    _wait_for(job, "start")
    assert job.status == "running" and _procs_of(job.run_dir)
    assert job.stop(timeout=60) == "stopped"
    assert _procs_of(job.run_dir) == [] and attach("zstop", workspace).status == "stopped"
    assert workspace.get_run(job.run_id)["status"] == "stopped" and (job.run_dir / "run.json").exists()
    with pytest.raises(JobError, match="no checkpoint to resume from"):
        resume("zstop", workspace)


def test_a_launcher_that_dies_fails_cleanly(zorbia_data: Path, tmp_path: Path, workspace, monkeypatch) -> None:
    hosts = tmp_path / "hostfile"
    hosts.write_text("no-such-host-cellops slots=1\n")
    with pytest.raises(JobError, match="^host no-such-host-cellops in hostfile .* is not reachable over ssh"):
        launch({"name": "zdie", "data": str(zorbia_data), "max_steps": 1, "hostfile": str(hosts), **TINY}, workspace)
    # a host that goes down after that check: DeepSpeed's launcher dies, the run fails cleanly
    from cellops.kernels_lib.train import nodes

    monkeypatch.setattr(nodes, "check_reachable", lambda hostfile: None)
    job = launch({"name": "zdie", "data": str(zorbia_data), "max_steps": 1, "hostfile": str(hosts), **TINY}, workspace)
    with pytest.raises(JobError) as e:
        job.wait(timeout=300)
    msg = str(e.value)
    assert "\n" not in msg and "no-such-host-cellops" in msg and "launcher.log" in msg
    assert job.status == "failed" and workspace.get_run(job.run_id)["status"] == "failed"
    for f in ("run.json", "config.json", "ds_config.json", "data/train.jsonl", "launcher.log", "exit.json"):
        assert (job.run_dir / f).exists(), f
    assert json.loads((job.run_dir / "exit.json").read_text())["code"] != 0
