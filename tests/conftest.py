"""Shared fixtures: a fresh workspace per test, a real IPython shell, the shared dev data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from testsupport import free_port, zorbia_rows  # noqa: E402

from cellops.kernels_lib.train import op_builds  # noqa: E402

# DeepSpeed started by a test itself (not through a launch) builds its ops where launches do,
# and a lock a killed build left there goes first, as a launch removes it
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(op_builds.build_root()))
op_builds.sweep_stale_locks(Path(os.environ["TORCH_EXTENSIONS_DIR"]))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own .cellops (W&B off unless a test turns it on)."""
    from cellops.kernels_lib.workspace import get_workspace

    home = tmp_path / ".cellops"
    monkeypatch.setenv("CELLOPS_HOME", str(home))
    monkeypatch.setenv("CELLOPS_WANDB", "off")
    monkeypatch.setenv("CELLOPS_CONFIG_DIR", str(tmp_path / ".config-cellops"))  # schedules trusted per test
    monkeypatch.chdir(tmp_path)
    return get_workspace(home)


@pytest.fixture
def ip():
    """A real InteractiveShell with cellops loaded."""
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "cellops")
    yield shell
    for name in list(shell.user_ns):
        if name.startswith("t_"):
            shell.user_ns.pop(name)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (dev datasets live outside the repo)")
    return SHARED_DATA


def _phoenix_path() -> Path:
    import sys

    return Path(os.environ.get("CELLOPS_PHOENIX") or Path(sys.prefix).with_name(Path(sys.prefix).name + "-phoenix")
                / "bin" / "phoenix")


def phoenix_executable() -> Path:
    """``phoenix`` from the venv `make test-setup` makes beside ours (.venv-phoenix), or $CELLOPS_PHOENIX."""
    exe = _phoenix_path()
    if not exe.exists():
        pytest.fail(f"Arize Phoenix is not installed at {exe}: run `make test-setup` (it creates .venv-phoenix)")
    return exe


_PHOENIX: dict[str, object] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start Phoenix as soon as a collected test needs it: it takes a minute or two to come up
    on a loaded machine, time the tests before it can use."""
    if _phoenix_path().exists() and any("phoenix" in getattr(item, "fixturenames", ())
                                        for item in session.items):
        _start_phoenix()  # (when it is missing, the tests that need it fail with what to do)


def _start_phoenix() -> None:
    import subprocess
    import tempfile

    if _PHOENIX:
        return
    work = Path(tempfile.mkdtemp(prefix="cellops-phoenix-"))
    port, grpc = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(grpc),
            "PHOENIX_WORKING_DIR": str(work), "PHOENIX_TELEMETRY_ENABLED": "false"}
    log = work / "phoenix.log"
    _PHOENIX.update(log=log, base=f"http://127.0.0.1:{port}", proc=subprocess.Popen(
        [str(phoenix_executable()), "serve"], env=env, stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"), cwd=work))


def pytest_sessionfinish(session: pytest.Session) -> None:
    proc = _PHOENIX.get("proc")
    if proc is not None:
        import shutil
        import subprocess

        proc.terminate()  # type: ignore[attr-defined]
        try:
            proc.wait(15)  # type: ignore[attr-defined]
        except subprocess.TimeoutExpired:
            proc.kill()  # type: ignore[attr-defined]
        shutil.rmtree(_PHOENIX["log"].parent, ignore_errors=True)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def phoenix() -> str:
    """A real Arize Phoenix server on 127.0.0.1 (its own venv, started at collection); its URL."""
    import time

    import httpx

    _start_phoenix()
    proc, base, log = _PHOENIX["proc"], str(_PHOENIX["base"]), _PHOENIX["log"]
    for _ in range(360):
        if proc.poll() is not None:  # type: ignore[attr-defined]
            pytest.fail("Phoenix exited: " + log.read_text()[-800:])  # type: ignore[attr-defined]
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail("Phoenix did not start in 3 minutes: " + log.read_text()[-800:])  # type: ignore[attr-defined]


# -- fine-tuning: the dequantized base model shared by the modules (data in testsupport) --------
@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded GGUF dequantized once per session (tens of seconds), shared by the modules."""
    from cellops.kernels_lib.models.hf import materialize
    from cellops.kernels_lib.workspace import Workspace

    return Path(materialize("default", Workspace(tmp_path_factory.getbasetemp() / "finetune-base" / ".cellops")))


@pytest.fixture
def linked_base(workspace, base_cache: Path) -> Path:
    """The test's workspace sees the session's dequantized base model (no second dequantization)."""
    link = workspace.artifacts / "hf-cache" / base_cache.name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(base_cache)
    return link


@pytest.fixture
def zorbia_data(tmp_path: Path, linked_base: Path) -> Path:
    """zorbia.jsonl in tmp_path, with the base model linked into the test's workspace."""
    import json

    path = tmp_path / "zorbia.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in zorbia_rows()))
    return path
