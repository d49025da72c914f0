"""Multi-node runs (``--hostfile``): DeepSpeed's runner starts every node's ranks with pdsh over
passwordless ssh, running the same python and run folder there (a shared filesystem).

Two things it does not do for us: say which host it could not reach (its own check tries the
first host only, and a later node just hangs or fails inside pdsh), and pass the environment the
ranks need (it forwards only ``PYTHON*``-like variables, plus a ``.deepspeed_env`` file in its
working directory). :func:`check_reachable` and :func:`write_env_file` do those.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import InvalidInputError, JobError

ENV_FILE = ".deepspeed_env"  # read by deepspeed.launcher.runner from its cwd (the run folder)
# what a rank reads from its environment: the workspace, the accelerator, offline hubs, W&B, threads
FORWARD = ("CELLOPS_", "DS_", "HF_", "WANDB_", "OMP_", "TOKENIZERS_", "TRANSFORMERS_")
SSH_TIMEOUT_S = 10


def hosts(path: str | Path) -> list[str]:
    """The hosts of a DeepSpeed hostfile (``HOST slots=N`` lines; ``#`` comments)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInputError(f"hostfile not found: {path}")
    found = [ln.split()[0] for ln in p.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not found:
        raise InvalidInputError(f"hostfile {path} lists no hosts; one line per node: 'HOST slots=N'")
    return found


def check_reachable(hostfile: str | Path) -> None:
    """Every host answers a non-interactive ssh, as pdsh will need; else one line naming it."""
    if shutil.which("pdsh") is None:
        raise JobError("multi-node training starts its nodes with pdsh, which is not installed "
                       "(Debian: apt-get install pdsh)")
    for host in hosts(hostfile):
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={SSH_TIMEOUT_S}", host, "true"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=3 * SSH_TIMEOUT_S)
            why = (r.stderr.strip().splitlines() or [f"ssh exited {r.returncode}"])[-1] if r.returncode else ""
        except subprocess.TimeoutExpired:
            why = f"no answer in {3 * SSH_TIMEOUT_S}s"
        except OSError as e:  # no ssh client at all
            why = str(e)
        if why:
            raise JobError(f"host {host} in hostfile {hostfile} is not reachable over ssh ({why}); "
                           "multi-node training needs passwordless ssh to every host")


def write_env_file(run_dir: Path, env: dict[str, str]) -> Path:
    """``run_dir/.deepspeed_env``: the variables of ``env`` the ranks on other nodes need."""
    lines = [f"{k}={v}" for k, v in sorted(env.items())
             if k.startswith(FORWARD) and "\n" not in v and '"' not in v]  # one line each, quotable
    path = run_dir / ENV_FILE
    path.write_text("".join(ln + "\n" for ln in lines))
    return path
