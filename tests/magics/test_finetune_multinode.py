"""%%finetune --hostfile with two loopback "nodes" (127.0.0.1 and 127.0.0.2), each an sshd this
test starts on a free port with a throwaway key: DeepSpeed's multi-node runner (pdsh over ssh)
starts node ranks 0 and 1, the job finishes and registers its model; a host nothing answers on
is one UsageError line naming it. Skips when sshd or pdsh is missing (scripts/system-deps.sh
installs them as root) or cannot start. The ssh client finds the ports and key through a temp
config that an `ssh` wrapper first on PATH passes (root's ~/.ssh is not the test's to edit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from testsupport import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _sshd_config(d: Path, host: str, port: int) -> Path:
    conf = d / f"sshd-{host}.conf"
    conf.write_text(f"ListenAddress {host}:{port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/id_key.pub\n"
                    f"PidFile {d}/sshd-{host}.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n")
    return conf


@pytest.fixture
def loopback_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Two sshds (127.0.0.1, 127.0.0.2), an ssh config naming them (and a dead 127.0.0.3), hostfiles."""
    if not (Path(SSHD).exists() and shutil.which("pdsh") and shutil.which("ssh-keygen")):
        pytest.skip("multi-node test needs sshd, ssh-keygen and pdsh (apt-get install openssh-server pdsh)")
    d = tmp_path / "ssh"
    (d / "bin").mkdir(parents=True)
    for key in ("host_key", "id_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    try:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    except OSError as e:
        pytest.skip(f"cannot prepare sshd: {e}")
    ports = {"127.0.0.1": free_port(), "127.0.0.2": free_port(), "127.0.0.3": free_port()}
    (d / "config").write_text("".join(f"Host {h}\n  Port {p}\n" for h, p in ports.items()) +
                              f"Host *\n  IdentityFile {d}/id_key\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
                              "  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n")
    (d / "bin" / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {d}/config "$@"\n')
    (d / "bin" / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{d / 'bin'}:{os.environ['PATH']}")
    servers = [subprocess.Popen([SSHD, "-D", "-f", str(_sshd_config(d, h, ports[h])), "-E", str(d / f"sshd-{h}.log")])
               for h in ("127.0.0.1", "127.0.0.2")]
    try:
        for host in ("127.0.0.1", "127.0.0.2"):
            for _ in range(40):  # sshd listens within a second or two, even loaded
                if subprocess.run([str(d / "bin" / "ssh"), host, "true"], capture_output=True, timeout=30).returncode == 0:
                    break
                time.sleep(0.5)
            else:
                log = d / f"sshd-{host}.log"
                pytest.skip(f"sshd on {host} did not start: {log.read_text()[-300:] if log.exists() else ''}")
        (tmp_path / "hosts").write_text("127.0.0.1 slots=1\n127.0.0.2 slots=1\n")
        (tmp_path / "hosts-dead").write_text("127.0.0.1 slots=1\n127.0.0.3 slots=1\n")
        yield {"hostfile": tmp_path / "hosts", "dead": tmp_path / "hosts-dead"}
    finally:
        for s in servers:
            s.terminate()
            s.wait(timeout=30)


@pytest.mark.slow
def test_two_nodes_train_and_register(ip, zorbia_data: Path, workspace, loopback_nodes) -> None:
    ip.run_cell_magic(
        "finetune",
        f"zmn --base default --data {zorbia_data} --max-steps 2 --batch 2 --max-len 32 --zero 0 --procs 1 "
        f"--eval-split 0 --save-every 0 --hostfile {loopback_nodes['hostfile']} -o t_job", "samples: 0\n")
    job = ip.user_ns["t_job"]
    assert job.status == "done" and job.model == "zmn@1", (job.run_dir / "supervisor.log").read_text()[-3000:]
    ranks = {p.stem: json.loads(p.read_text()) for p in (job.run_dir / "ranks").glob("rank*.json")}
    assert {k: v["node_rank"] for k, v in ranks.items()} == {"rank0": 0, "rank1": 1}
    assert job.spec["plan"]["world"] == 2 and job.metrics["steps"] == 2
    assert workspace.resolve("model", "zmn@1").content["format"] == "hf"
    # the ranks on the second node got the workspace and the CPU accelerator through this file
    env_file = (job.run_dir / ".deepspeed_env").read_text()
    assert f"CELLOPS_HOME={workspace.root}\n" in env_file and "DS_ACCELERATOR=cpu\n" in env_file


def test_an_unreachable_host_is_one_line_naming_it(ip, zorbia_data: Path, workspace, loopback_nodes) -> None:
    with pytest.raises(UsageError, match=r"^host 127\.0\.0\.3 in hostfile .*hosts-dead is not reachable over ssh "
                                         r"\(.*Connection refused\)") as e:
        ip.run_cell_magic("finetune", f"zdead --base default --data {zorbia_data} --max-steps 1 "
                          f"--hostfile {loopback_nodes['dead']}", "samples: 0\n")
    assert "\n" not in str(e.value)
    assert not list((workspace.artifacts / "finetune").glob("zdead/*"))  # nothing half-started left
