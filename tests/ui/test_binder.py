"""binder/postBuild in a fresh venv: what mybinder.org would run, minus the downloads.

The venv sees this environment's already-installed dependencies through a .pth overlay (without
cellops itself), so pip resolves them from there and the test stays cheap; the cellops wheel,
the npm build and the Jupyter registration are real.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def copy_checkout(dest: Path) -> None:
    """The files a clone would have (tracked + new, not ignored): no node_modules, no build."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.split(b"\0")
    for raw in filter(None, files):
        src = REPO / raw.decode()
        if src.is_file():
            (dest / raw.decode()).parent.mkdir(parents=True, exist_ok=True)
            (dest / raw.decode()).write_bytes(src.read_bytes())
            os.chmod(dest / raw.decode(), src.stat().st_mode)


def deps_overlay(dest: Path) -> Path:
    """Symlinks to this env's site-packages, minus every trace of cellops."""
    site = Path(sysconfig.get_paths()["purelib"])
    dest.mkdir()
    for entry in site.iterdir():
        if re.match(r"(_?_?editable.*cellops|cellops)", entry.name, re.I):
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


def console_scripts(bin_dir: Path, py: Path) -> None:
    """The jupyter* commands the overlaid packages would have put in the venv's bin/."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="console_scripts"):
        if ep.name.startswith("jupyter") and not (bin_dir / ep.name).exists():
            mod, _, attr = ep.value.partition(":")
            script = bin_dir / ep.name
            script.write_text(f"#!{py}\nimport sys\nfrom {mod} import {attr.split('.')[0]} as _m\n"
                              f"sys.exit(_m{''.join('.' + a for a in attr.split('.')[1:])}())\n")
            script.chmod(0o755)


def test_postbuild_installs_a_working_cellops_in_a_fresh_venv(tmp_path):
    checkout, env_dir = tmp_path / "repo", tmp_path / "venv"
    copy_checkout(checkout)
    assert not (checkout / "src" / "cellops" / "labextension").exists()
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    venv_site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    (venv_site / "_cellops_test_deps.pth").write_text(str(deps_overlay(tmp_path / "deps")) + "\n")
    console_scripts(env_dir / "bin", py)

    env = {k: v for k, v in os.environ.items() if k not in ("CELLOPS_HOME", "PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"PATH": f"{env_dir / 'bin'}:{env['PATH']}", "VIRTUAL_ENV": str(env_dir),
            "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def run(*cmd: str | Path) -> str:
        r = subprocess.run([str(c) for c in cmd], cwd=checkout, env=env, capture_output=True,
                           text=True, timeout=900)
        out = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
        assert r.returncode == 0, f"{cmd} failed:\n{out[-5000:]}"
        return out

    run(py, "-m", "pip", "install", "-r", "binder/requirements.txt")
    out = run("bash", "binder/postBuild")
    assert "cellops: binder ready" in out

    # installed into the venv (not the overlay, not the checkout), with both extensions active
    where = run(py, "-c", "import cellops; print(cellops.__file__)").strip()
    assert where.startswith(str(venv_site)), where
    labext = env_dir / "share" / "jupyter" / "labextensions" / "cellops"
    assert (labext / "package.json").is_file() and (labext / "install.json").is_file()
    assert list((labext / "static").glob("remoteEntry.*.js"))
    assert (env_dir / "etc" / "jupyter" / "jupyter_server_config.d" / "cellops.json").is_file()
    assert re.search(r"cellops v\S+ enabled\s+OK \(python, cellops\)", run("jupyter", "labextension", "list"))
    assert re.search(r"cellops \S+ OK", run("jupyter", "server", "extension", "list"))
    cfg = (tmp_path / "jupyter-config" / "jupyter_server_config.py").read_text()
    assert "/lab/tree/notebooks/quickstart.ipynb" in cfg
    assert (checkout / "notebooks" / "quickstart.ipynb").is_file()
    assert sys.executable != str(py)
