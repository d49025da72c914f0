"""DeepSpeed's CPU backend leaves shared memory behind; this names and removes it.

When every rank is on one machine, DeepSpeed's CPU communication op creates one POSIX shared-memory
segment per rank for its low-latency allreduce, ``/dev/shm/deepspeed_allreduce_buffer_{uid}_{addr}
_{port}_{rank}`` (about 66 MB each), and never unlinks it. /dev/shm is RAM: a day of fine-tuning
runs left 16 GB there and starved the next jobs of memory. Two places release it:

- each rank unlinks its own segment once training has begun (:func:`release_own`): by then every
  rank has mapped every segment (DeepSpeed's engine set-up is collective), the mappings stay valid
  until the processes exit, and nothing is left even when the whole job is killed;
- the supervisor removes what is left under the run's rendezvous port when the launcher exits
  (:func:`release_port`): ranks that died before training began.
"""

from __future__ import annotations

import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")
PREFIX = "deepspeed_allreduce_buffer"


def segments(port: int | str, shm_dir: Path = SHM_DIR) -> list[Path]:
    """This user's DeepSpeed allreduce segments for the job on rendezvous ``port``."""
    return sorted(shm_dir.glob(f"{PREFIX}_{os.getuid()}_*_{port}_*"))


def release_port(port: int | str, shm_dir: Path = SHM_DIR) -> int:
    """Remove every segment of the job on ``port``; returns how many were removed."""
    removed = 0
    for seg in segments(port, shm_dir):
        try:
            seg.unlink()
            removed += 1
        except FileNotFoundError:  # a rank released its own meanwhile
            pass
    return removed


def release_own(shm_dir: Path = SHM_DIR) -> bool:
    """Unlink this rank's segment (named from the launcher's MASTER_ADDR, MASTER_PORT and RANK);
    False when there is none (one rank, another node, or DeepSpeed did not create it)."""
    addr, port, rank = (os.environ.get(k, "") for k in ("MASTER_ADDR", "MASTER_PORT", "RANK"))
    if not port or not rank:
        return False
    try:
        (shm_dir / f"{PREFIX}_{os.getuid()}_{addr}_{port}_{rank}").unlink()
        return True
    except FileNotFoundError:
        return False
