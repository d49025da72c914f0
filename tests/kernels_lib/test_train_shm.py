"""shm.release_port / release_own on a folder standing in for /dev/shm: only this user's segments of
the named job go, never another job's or another user's."""

from __future__ import annotations

import os
from pathlib import Path

from cellops.kernels_lib.train import shm


def _seg(d: Path, uid: int, port: int, rank: int) -> Path:
    p = d / f"{shm.PREFIX}_{uid}_127.0.0.1_{port}_{rank}"
    p.write_bytes(b"x")
    return p


def test_release_port_removes_only_that_jobs_segments(tmp_path: Path) -> None:
    uid = os.getuid()
    mine = [_seg(tmp_path, uid, 29511, r) for r in (0, 1)]
    other_job = _seg(tmp_path, uid, 29512, 0)
    other_user = _seg(tmp_path, uid + 1, 29511, 0)
    unrelated = tmp_path / "torch_shm_29511"
    unrelated.write_bytes(b"x")
    assert shm.segments(29511, tmp_path) == mine
    assert shm.release_port(29511, tmp_path) == 2
    assert not any(p.exists() for p in mine)
    assert other_job.exists() and other_user.exists() and unrelated.exists()
    assert shm.release_port(29511, tmp_path) == 0


def test_release_own_unlinks_this_ranks_segment(tmp_path: Path, monkeypatch) -> None:
    uid = os.getuid()
    mine, peer = _seg(tmp_path, uid, 29513, 1), _seg(tmp_path, uid, 29513, 0)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29513")
    monkeypatch.setenv("RANK", "1")
    assert shm.release_own(tmp_path) is True
    assert not mine.exists() and peer.exists()
    assert shm.release_own(tmp_path) is False  # already gone
    monkeypatch.delenv("MASTER_PORT")
    assert shm.release_own(tmp_path) is False  # not launched by DeepSpeed: nothing to name
