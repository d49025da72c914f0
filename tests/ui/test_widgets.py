"""The ipywidgets views render and react in a real JupyterLab (chromium, widget manager, kernel)."""

from __future__ import annotations

import pytest
from test_sidebar import open_and_run_all, output, screenshot, write_notebook

pytestmark = [pytest.mark.ui, pytest.mark.slow]

CELLS = [
    "%load_ext cellops",
    "%%prompt cap --max-tokens 4 --temperature 0 -p country=France\nCapital of {{ country }}?",
    'cases = [{"country": "France"}, {"country": "Italy"}]',
    "%prompt compare cap@1 --on cases --max-tokens 4",
    "%guard check My phone number is 415-555-0123",
]


def test_prompt_feedback_compare_grid_and_guard_report(lab, page, tmp_path):
    write_notebook(lab.root / "widgets.ipynb", *CELLS)
    open_and_run_all(lab, page, "widgets.ipynb")

    # %%prompt: the run with rating buttons (an ipywidgets VBox), and a click is recorded
    run_out = output(page, 1)
    run_out.locator(".jupyter-widgets button").first.wait_for(timeout=240_000)
    assert "cap@1" in run_out.first.inner_text()
    run_out.locator(".jupyter-widgets button").first.click()
    run_out.locator(".jupyter-widgets", has_text="saved").first.wait_for(timeout=30_000)

    # %prompt compare: the live grid fills every cell (2 cases x 1 column), then gets buttons
    grid = output(page, 3).locator(".widget-gridbox")
    grid.wait_for(timeout=240_000)
    page.wait_for_function(
        """() => { const g = document.querySelectorAll('.jp-Notebook .jp-Cell')[3]
                     .querySelector('.widget-gridbox');
                   return g && !g.innerText.includes('waiting') && g.querySelectorAll('button').length >= 2; }""",
        timeout=240_000)
    text = grid.inner_text()
    assert "France" in text and "Italy" in text and "cap@1" in text

    # %guard check: the report's HTML names the PII finding
    guard = output(page, 4)
    guard.first.wait_for(timeout=240_000)
    assert "pii" in guard.first.inner_text().lower()

    body = page.locator(".jp-Notebook").inner_text()
    assert "Error displaying widget" not in body and "Traceback" not in body
    screenshot(page, tmp_path, "widgets")

    from cellops.kernels_lib.workspace import get_workspace

    ws = get_workspace(lab.root / ".cellops")
    with ws.db() as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        feedback = [t for t in tables if "feedback" in t]
        assert feedback and conn.execute(f"SELECT COUNT(*) FROM {feedback[0]}").fetchone()[0] >= 1
