"""What a cloned workspace could otherwise make cellops run or trust: modules planted beside the
served app's working directory, a chain step that imports ``os:makedirs``, a serve token its
author knows. Each is refused (or ignored) without running the planted code."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.cli import main
from cellops.kernels_lib import chains
from cellops.kernels_lib.errors import InvalidInputError, JobError

CHAIN = """
inputs: {path: ~}
steps:
  made: {python: "os:makedirs", args: {name: "{{ inputs.path }}"}}
"""


def test_a_chain_from_elsewhere_imports_no_code_until_trusted(tmp_path: Path, workspace, monkeypatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Served, a cloned chain's ``python: os:makedirs`` step would run for every HTTP client."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    chains.save("mk", CHAIN)
    assert chains.run("mk", {"path": str(mine)}).status == "ok" and mine.is_dir()  # saved here: runs
    monkeypatch.setenv("CELLOPS_CONFIG_DIR", str(tmp_path / "another-user"))  # as after a clone
    with pytest.raises(JobError) as e:
        chains.run("mk", {"path": str(theirs)})
    msg = str(e.value)
    assert "\n" not in msg and "imports Python code (os:makedirs)" in msg and "cellops chain trust mk@1" in msg
    assert not theirs.exists()
    assert main(["chain", "trust", "mk@1"]) == 0 and "os:makedirs" in capsys.readouterr().out
    assert chains.run("mk", {"path": str(theirs)}).status == "ok" and theirs.is_dir()


def test_a_served_app_never_imports_from_the_workspace(tmp_path: Path, workspace) -> None:
    """The server child runs ``python -m`` in the workspace folder, which would put a cloned
    .cellops/json.py or .cellops/cellops/ first on sys.path."""
    from cellops.kernels_lib.serving import procs
    from cellops.kernels_lib.serving.config import ServeConfig

    marker = tmp_path / "planted-ran"
    plant = f"import pathlib; pathlib.Path({str(marker)!r}).mkdir(exist_ok=True)\n"
    (workspace.root / "json.py").write_text(plant)
    (workspace.root / "cellops").mkdir()
    (workspace.root / "cellops" / "__init__.py").write_text(plant)
    # no such prompt: the real server starts, finds nothing to serve and exits (nothing loads)
    with pytest.raises(JobError, match="(?s)exited with code .*no prompt named 'nosuchprompt'"):  # the real cellops
        procs.start(ServeConfig("nosuchprompt", guard="off", port=0), workspace, wait_s=120)
    assert not marker.exists()


def test_a_serve_token_someone_else_wrote_is_refused(workspace) -> None:
    from cellops.kernels_lib.serving import auth

    token, created = auth.load_token(workspace, "app", None)
    assert created and auth.load_token(workspace, "app", None) == (token, False)
    auth.token_path(workspace, "app").chmod(0o644)  # as `git clone` writes a committed token
    with pytest.raises(InvalidInputError, match="was not made by cellops for you .*mode 644.*delete it"):
        auth.load_token(workspace, "app", None)
