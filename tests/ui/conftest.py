"""A real `jupyter lab` (127.0.0.1, token auth, tmp root) and Debian's headless chromium."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from jupyter_proc import TOKEN, Server, start_jupyter, stop_jupyter  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]

__all__ = ["TOKEN", "Server", "lab", "page"]


def _build_time(ext: Path) -> float:
    """When a labextension folder was last built: the newest of its package.json and static files."""
    files = [ext / "package.json", *(ext / "static").glob("*")]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)


def labextension_args(tmp: Path) -> list[str]:
    """The browser tests test what this checkout built: its own build (src/cellops/labextension)
    when it exists and is newer than the installed one (the shared venv may hold another
    checkout's build), served from an extra path that JupyterLab searches first; the installed one
    otherwise. The packaging test checks the installed one on its own."""
    from jupyter_core.paths import jupyter_path

    installed = next((Path(p) / "cellops" for p in jupyter_path("labextensions")
                      if (Path(p) / "cellops" / "package.json").is_file()), None)
    built = REPO / "src" / "cellops" / "labextension"
    if not (built / "package.json").is_file():
        if installed is None:
            pytest.fail("the cellops labextension is neither installed nor built: run extension/build.sh")
        return []
    if installed is not None and (installed.resolve() == built.resolve()
                                  or _build_time(installed) >= _build_time(built)):
        return []
    extra = tmp / "labextensions"
    extra.mkdir()
    (extra / "cellops").symlink_to(built)
    return [f"--LabApp.extra_labextensions_path={extra}"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    root = tmp_path / "root"
    root.mkdir()
    extra = ["--LabApp.expose_app_in_browser=True",
             f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
             f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}",
             "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             *labextension_args(tmp_path)]
    s = start_jupyter("lab", root, tmp_path, extra)
    yield s
    stop_jupyter(s)
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"--- jupyter lab log ({s.log}) ---\n{s.log.read_text()[-4000:]}")


@pytest.fixture
def page(tmp_path: Path, request: pytest.FixtureRequest):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run scripts/system-deps.sh")
    if importlib.util.find_spec("playwright") is None:
        pytest.fail("the playwright package is missing: pip install -e '.[dev]'")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chrome-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROME_FLAGS, viewport={"width": 1400, "height": 900})
        pg = ctx.pages[0] if ctx.pages else ctx.new_page()
        pg.errors = []  # type: ignore[attr-defined]
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))  # type: ignore[attr-defined]
        try:
            yield pg
            rep = getattr(request.node, "rep_call", None)
            if rep is not None and rep.failed:  # what the browser showed when it failed
                shot = tmp_path / "screenshots" / "failure.png"
                shot.parent.mkdir(exist_ok=True)
                pg.screenshot(path=str(shot))
                print(f"failure screenshot: {shot}; page errors: {pg.errors}")  # type: ignore[attr-defined]
        finally:
            ctx.close()
