"""The Traces panel in a real JupyterLab (headless chromium): chains with python steps run in the
lab's own kernel, then the panel lists, filters and opens their traces (waterfall, span details)."""

from __future__ import annotations

import pytest
from test_sidebar import open_and_run_all, screenshot, write_notebook

pytestmark = [pytest.mark.ui, pytest.mark.slow]

FUNCS = ("def t_split(s):\n    return s.split()\n\n"
         "def t_tag(t):\n    return '<img src=x onerror=\"window.__xss=1\">' + t\n\n"
         "def t_boom(s):\n    raise ValueError('boom in ' + s)\n")
SHOUT = """%%chain shout -p t_text='a b'
inputs: [t_text]
steps:
  words: {python: t_split, args: {s: "{{ inputs.t_text }}"}}
  tag:
    map: "{{ steps.words.output }}"
    step: {python: t_tag, args: {t: "{{ item }}"}}
output: "{{ steps.tag.output | join(' ') }}"
"""
BOOM = """%%chain boom -p t_text=x
inputs: [t_text]
steps:
  fail: {python: t_boom, args: {s: "{{ inputs.t_text }}"}}
"""

PANEL = "#cellops-sidebar"
TRACE_ROWS = f"{PANEL} [data-section='traces'] li.jp-cellops-row"


def wait_for_names(page, *names: str) -> None:
    """Until the trace list shows exactly these root names (a filter refetches from the server)."""
    page.wait_for_function(
        f"""want => [...document.querySelectorAll("{TRACE_ROWS} .jp-cellops-name")]
        .map(e => e.textContent).join() === want""", arg=",".join(names), timeout=15_000)


def test_traces_panel_lists_filters_and_opens_a_waterfall(lab, page, tmp_path):
    # the failing chain goes last: run-all stops at a cell that raises
    write_notebook(lab.root / "chains.ipynb", "%load_ext cellops", FUNCS, SHOUT, BOOM)
    open_and_run_all(lab, page, "chains.ipynb")
    page.locator(".jp-OutputArea-output", has_text="boom in x").first.wait_for(timeout=180_000)

    page.locator("li[data-id='cellops-sidebar']").click()
    rows = page.locator(TRACE_ROWS)
    rows.nth(1).wait_for(timeout=30_000)
    names = rows.locator(".jp-cellops-name").all_inner_texts()
    assert names[:2] == ["chain boom@1", "chain shout@1"], names  # newest first

    # filter by status on the server: only the failed chain is left
    page.locator(f"{PANEL} [data-testid='trace-filter-status']").select_option("error")
    wait_for_names(page, "chain boom@1")
    page.locator(f"{PANEL} [data-testid='trace-filter-status']").select_option("")
    name_box = page.locator(f"{PANEL} [data-testid='trace-filter-name']")
    name_box.fill("shout*")
    name_box.press("Enter")
    wait_for_names(page, "chain shout@1")

    # the waterfall: nested rows, a bar per span coloured by kind, sized in percent of the trace
    rows.first.click()
    spans = page.locator(f"{PANEL} [data-testid='span-row']")
    spans.nth(4).wait_for(timeout=30_000)
    texts = [t.split("\n")[0] for t in spans.locator(".jp-cellops-wf-name").all_inner_texts()]
    assert texts == ["chain shout@1", "words", "tag", "tag[0]", "tag[1]"], texts
    assert spans.first.get_attribute("data-kind") == "chain"
    assert spans.nth(1).get_attribute("data-kind") == "step"
    root_bar = spans.first.locator(".jp-cellops-wf-bar")
    assert "jp-cellops-kind-chain" in root_bar.get_attribute("class")
    frac = "b => b.getBoundingClientRect().width / b.parentElement.getBoundingClientRect().width"
    assert root_bar.evaluate("b => [b.style.left, b.style.width]") == ["0%", "100%"]
    assert 0 < spans.nth(1).locator(".jp-cellops-wf-bar").evaluate(frac) < 0.99  # a step: part of the chain
    pad = [spans.nth(i).locator(".jp-cellops-wf-name").evaluate("e => e.style.paddingLeft") for i in (0, 1, 3)]
    assert pad == ["0px", "10px", "20px"]
    colour = root_bar.evaluate("b => getComputedStyle(b).backgroundColor")
    assert colour == "rgb(130, 80, 223)"  # the chain colour of the static waterfall (#8250df)

    # span details: outputs and attributes as text; workspace markup stays inert
    spans.nth(1).click()
    detail = page.locator(f"{PANEL} [data-testid='span-detail']")
    detail.wait_for(timeout=10_000)
    assert detail.locator("[data-testid='span-output']").inner_text() == '["a", "b"]'
    spans.nth(3).click()
    out = page.locator(f"{PANEL} [data-testid='span-output']")
    out.filter(has_text="<img").wait_for(timeout=10_000)
    assert out.inner_text().startswith('<img src=x onerror="window.__xss=1">a')
    assert page.locator(f"{PANEL} img").count() == 0
    assert page.evaluate("() => window.__xss") is None
    shot = screenshot(page, tmp_path, "traces-waterfall")

    # the failed chain: its step shows the error and the traceback event
    page.locator(f"{PANEL} .jp-cellops-detail-head button", has_text="back").click()
    name_box = page.locator(f"{PANEL} [data-testid='trace-filter-name']")
    name_box.fill("boom*")
    name_box.press("Enter")
    wait_for_names(page, "chain boom@1")
    rows.first.click()
    page.locator(f"{PANEL} [data-testid='span-row']", has_text="fail").click()
    alert = page.locator(f"{PANEL} [data-testid='span-detail'] [role='alert']").first
    alert.wait_for(timeout=10_000)
    assert "ValueError: boom in x" in alert.inner_text()
    assert "Traceback" in page.locator(f"{PANEL} [data-testid='span-event']").first.inner_text()
    assert not [e for e in page.errors if "cellops" in e.lower()], page.errors
    assert shot.exists()


SLOW = """%%chain slow -p t_text=go
inputs: [t_text]
steps:
  first: {python: t_nap, args: {s: "{{ inputs.t_text }}"}}
  second: {python: t_nap, args: {s: "{{ steps.first.output }}"}}
  third: {python: t_nap, args: {s: "{{ steps.second.output }}"}}
"""


def test_live_waterfall_fills_in_while_a_chain_runs(lab, page, tmp_path):
    """%%chain -p in a live kernel: the ipywidgets waterfall grows span by span while the cell
    runs, then gives way to the result's static waterfall (the one papermill/nbconvert keep)."""
    nap = "import time\n\ndef t_nap(s):\n    time.sleep(2)\n    return s + '!'\n"
    write_notebook(lab.root / "live.ipynb", "%load_ext cellops", nap, SLOW)
    page.goto(f"{lab.url}/lab/tree/live.ipynb?token={lab.token}")
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
        "?.connectionStatus === 'connected'", timeout=120_000)
    # every state of the live view's rows, as the browser shows them (a MutationObserver)
    page.evaluate("""() => {
        window.__seen = [];
        const nb = document.querySelector('.jp-Notebook');
        new MutationObserver(() => {
            const w = [...nb.querySelectorAll('.jupyter-widgets')].find(e => e.querySelector('.wf-name'));
            if (w) {
                const rows = [...w.querySelectorAll('.wf-name')].map(e => e.textContent).join(',');
                if (window.__seen[window.__seen.length - 1] !== rows) { window.__seen.push(rows); }
            }
        }).observe(nb, { subtree: true, childList: true, characterData: true });
    }""")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    cell.locator(".jp-OutputArea-output", has_text="go!!!").first.wait_for(timeout=180_000)
    seen = page.evaluate("() => window.__seen")
    # it filled in: the root alone, then each step as it started, while the chain ran
    assert "chain slow@1,first" in seen and "chain slow@1,first,second" in seen, seen
    assert seen.index("chain slow@1,first") < seen.index("chain slow@1,first,second"), seen

    # done: the live view is gone, the result carries the static waterfall (folded)
    assert cell.locator(".jupyter-widgets .wf-name").count() == 0
    cell.locator(".jp-OutputArea-output details summary", has_text="trace").first.click()
    names = cell.locator(".jp-OutputArea-output .wf-name").all_inner_texts()
    assert names[:4] == ["chain slow@1", "first", "second", "third"], names
    body = page.locator(".jp-Notebook").inner_text()
    assert "Error displaying widget" not in body and "Traceback" not in body
    screenshot(page, tmp_path, "live-waterfall-done")
