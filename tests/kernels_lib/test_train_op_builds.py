"""op_builds: one op build folder per interpreter; only locks older than any build are swept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cellops.kernels_lib.train import op_builds


def test_stale_locks_go_and_a_build_in_progress_keeps_its_lock(tmp_path: Path) -> None:
    stale, fresh = tmp_path / "deepspeed_shm_comm" / "lock", tmp_path / "cpu_adam" / "lock"
    for lock in (stale, fresh):
        lock.parent.mkdir()
        lock.touch()
    old = time.time() - op_builds.STALE_AFTER_S - 1
    os.utime(stale, (old, old))
    (tmp_path / "deepspeed_shm_comm" / "deepspeed_shm_comm.so").touch()
    assert op_builds.sweep_stale_locks(tmp_path) == [stale]
    assert not stale.exists() and fresh.exists()
    assert (tmp_path / "deepspeed_shm_comm" / "deepspeed_shm_comm.so").exists()
    assert op_builds.sweep_stale_locks(tmp_path / "absent") == []


def test_each_virtualenv_builds_in_its_own_folder(tmp_path: Path) -> None:
    here = op_builds.build_root()
    assert here.parent == op_builds.USER_CACHE / "torch_extensions"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True)
    code = "from cellops.kernels_lib.train import op_builds; print(op_builds.build_root())"
    other = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                           env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}, check=True)
    assert Path(other.stdout.strip()).parent == here.parent and Path(other.stdout.strip()) != here
