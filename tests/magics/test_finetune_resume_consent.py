"""``%finetune resume NAME --hostfile FILE`` and ``cellops finetune resume``: a cloned run's hostfile
is one UsageError line / exit 2 naming the flag that consents; the flag reaches the resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from testsupport import killed_run, no_node_answers

from cellops.cli import main


def test_resume_asks_for_the_hostfile_in_one_line(ip, zorbia_data: Path, workspace, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    no_node_answers(tmp_path, monkeypatch)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.3 slots=1\n")
    job = killed_run(workspace, zorbia_data, hostfile=hosts)
    with pytest.raises(UsageError) as e:
        ip.run_line_magic("finetune", "resume zr")
    assert "\n" not in str(e.value) and "--hostfile FILE" in str(e.value)
    with pytest.raises(UsageError) as named:  # consent given: it goes on to check the hosts
        ip.run_line_magic("finetune", f"resume zr --hostfile {hosts}")
    assert "not launched by you" not in str(named.value)
    with pytest.raises(UsageError, match="--hostfile goes with %finetune resume"):
        ip.run_line_magic("finetune", f"stop zr --hostfile {hosts}")
    assert main(["finetune", "resume", "zr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not launched by you on this machine" in err
    assert not (job.run_dir / "launch.json").exists()
