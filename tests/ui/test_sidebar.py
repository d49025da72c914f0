"""The cellops sidebar in a real JupyterLab, driven by headless chromium."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]

PROMPT_V1 = "%%prompt greet --max-tokens 4 --temperature 0\nSay hello."
PROMPT_V2 = "%%prompt greet --max-tokens 4 --temperature 0\nSay hello twice."


def write_notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def open_and_run_all(lab, page, name: str) -> None:
    """Open notebook ``name`` of the lab's root, wait for its kernel, run every cell."""
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
        "?.connectionStatus === 'connected'", timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def output(page, n: int):
    """The output areas of the current notebook's cell ``n``."""
    return page.locator(".jp-Notebook .jp-Cell").nth(n).locator(".jp-OutputArea-output")


def js_run_new_cell(page, source: str) -> None:
    """Insert a cell below the active one in the current notebook, set its source, run it."""
    page.evaluate(
        """async (src) => {
            const app = window.jupyterapp;
            await app.commands.execute('notebook:insert-cell-below');
            app.shell.currentWidget.content.activeCell.model.sharedModel.setSource(src);
            await app.commands.execute('notebook:run-cell');
        }""",
        source,
    )


def screenshot(page, tmp_path: Path, name: str) -> Path:
    out = tmp_path / "screenshots"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # a real rendering, not a blank page
    print(f"screenshot: {path}")
    return path


def test_prompt_cell_shows_up_in_the_sidebar(lab, page, tmp_path):
    write_notebook(lab.root / "demo.ipynb", "%load_ext cellops", PROMPT_V1)
    open_and_run_all(lab, page, "demo.ipynb")
    page.locator(".jp-OutputArea-output", has_text="greet@1").first.wait_for(timeout=180_000)

    # the sidebar: its tab in the left area, then the new prompt version in its list
    page.locator("li[data-id='cellops-sidebar']").click()
    row = page.locator("#cellops-sidebar [data-testid='prompt-greet']")
    row.wait_for(timeout=30_000)
    assert "v1" in row.inner_text()
    runs = page.locator("#cellops-sidebar [data-section='runs'] .jp-cellops-row")
    runs.first.wait_for(timeout=30_000)
    assert "prompt" in runs.first.inner_text()

    # a second version: the list follows after the cell runs, the detail shows the diff
    js_run_new_cell(page, PROMPT_V2)
    page.locator(".jp-OutputArea-output", has_text="greet@2").first.wait_for(timeout=180_000)
    page.locator("#cellops-sidebar [data-testid='prompt-greet'] .jp-cellops-ver",
                 has_text="v2").wait_for(timeout=30_000)
    row.click()
    diff = page.locator("#cellops-sidebar [data-testid='diff']")
    diff.wait_for(timeout=30_000)
    assert "+Say hello twice." in diff.inner_text() and "-Say hello." in diff.inner_text()
    shot = screenshot(page, tmp_path, "sidebar-prompt-diff")

    # "insert run" on v1 puts a pinned %prompt run cell into the notebook
    page.locator("#cellops-sidebar [data-testid='version-greet@1'] button",
                 has_text="insert run").click()
    sources = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.sharedModel"
                            ".cells.map(c => c.getSource())")
    assert "%prompt run greet@1" in sources
    assert not [e for e in page.errors if "cellops" in e.lower()], page.errors
    assert shot.exists()


def test_corrupt_workspace_shows_an_error_in_the_panel(lab, page, tmp_path):
    (lab.root / ".cellops").mkdir()
    (lab.root / ".cellops" / "cellops.db").write_bytes(b"garbage, not a database" * 50)
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator("li[data-id='cellops-sidebar']").click()
    alert = page.locator("#cellops-sidebar [role='alert']")
    alert.wait_for(timeout=60_000)
    text = alert.inner_text()
    assert "cellops.db" in text and "move it aside" in text
    screenshot(page, tmp_path, "sidebar-corrupt")
    assert lab.proc.poll() is None


def test_running_job_progress_refreshes_by_itself(lab, page, tmp_path):
    """A fine-tune run's event file grows; the open sidebar follows without a click."""
    import json

    from cellops.kernels_lib.workspace import get_workspace

    ws = get_workspace(lab.root / ".cellops")
    run_dir = ws.artifacts / "runs" / "ft-ui"
    run_dir.mkdir(parents=True)
    events = run_dir / "events.jsonl"

    def emit(**ev):
        with open(events, "a") as f:
            f.write(json.dumps(ev) + "\n")

    emit(t=1, kind="start", max_steps=8)
    emit(t=2, kind="log", step=2, loss=2.75)
    ws.record_run("finetune", {"run_dir": str(run_dir), "base_model": "default"}, "tiny",
                  status="running")
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator("li[data-id='cellops-sidebar']").click()
    label = page.locator("#cellops-sidebar [data-section='jobs'] .jp-cellops-row .jp-cellops-meta")
    label.wait_for(timeout=60_000)
    assert label.inner_text() == "running 25% · step 2/8 · loss 2.75"

    emit(t=3, kind="log", step=6, loss=1.5)
    page.locator("#cellops-sidebar [data-section='jobs'] .jp-cellops-meta",
                 has_text="running 75% · step 6/8").wait_for(timeout=15_000)
    page.locator("#cellops-sidebar [data-section='jobs'] .jp-cellops-row").click()
    emit(t=4, kind="log", step=8, loss=1.25)
    emit(t=5, kind="done", eval_loss_after=0.9)
    page.locator("#cellops-sidebar [data-testid='job-label']",
                 has_text="done 100% · step 8/8 · loss 1.25").wait_for(timeout=15_000)
    assert page.locator("#cellops-sidebar svg.jp-cellops-spark path").get_attribute("d").count("L") == 2
    screenshot(page, tmp_path, "sidebar-job")


def test_dataset_cell_shows_up_in_the_sidebar_with_its_card(lab, page, tmp_path):
    rows = ('{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}\n'
            '{"prompt": "No pair", "chosen": "x"}\n')
    write_notebook(lab.root / "data.ipynb", "%load_ext cellops", "%%dataset pairs\n" + rows)
    open_and_run_all(lab, page, "data.ipynb")
    page.locator(".jp-OutputArea-output", has_text="pairs@1").first.wait_for(timeout=180_000)
    page.locator("li[data-id='cellops-sidebar']").click()
    row = page.locator("#cellops-sidebar [data-testid='dataset-pairs@1']")
    row.wait_for(timeout=30_000)
    assert "1 row · preference · 1 bad" in row.inner_text()
    row.click()
    card = page.locator("#cellops-sidebar [data-testid='card']")
    card.wait_for(timeout=30_000)
    assert "'rejected' is missing" in card.inner_text()
    screenshot(page, tmp_path, "sidebar-dataset-card")
