"""A pipeline run is one trace: a span per executed cell, the kernel's own spans under it."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from test_pipelines import write_nb

from cellops.kernels_lib import pipelines
from cellops.kernels_lib.tracking import traces


@pytest.mark.slow
def test_pipeline_cells_are_spans_and_kernel_spans_nest_under_them(tmp_path: Path, workspace) -> None:
    nb = write_nb(tmp_path / "traced.ipynb", [
        "q = 'hello'",
        "import cellops\ncellops.prompts.save('pp', 'Say {{ q }}.', params={'max_tokens': 4})\n"
        "r = cellops.prompts.run('pp', {'q': q})",
        "cellops.traces.get(r.trace_id)",  # the static waterfall, as a notebook output
        "raise ValueError('stop here')",
    ])
    run = pipelines.run(nb)
    assert run.status == "failed"
    st = traces.get(run.record["trace_id"], workspace)
    assert st.root.name == "pipeline traced.ipynb" and st.root.status == "error"
    assert st.summary.run_id == run.id
    (attempt,) = st.children(st.root)
    cells = st.children(attempt)
    # parameters, the prompt cell, the display cell, the failing cell (no parameters: none injected)
    assert [c.name for c in cells] == ["cell 1", "cell 2", "cell 3", "cell 4"]
    assert cells[3].status == "error" and "stop here" in cells[3].attrs["error"]
    assert "prompts.run" in cells[1].attrs["input.value"] and cells[1].status == "ok"
    (prompt_root,) = st.children(cells[1])  # made in the kernel process, parented across it
    assert prompt_root.name == "prompt pp@1" and prompt_root.trace_id == st.trace_id
    names = [s.name for s in st.children(prompt_root)]
    assert names == ["render", "load_model", "generate"]
    gen = next(s for s in st.children(prompt_root) if s.name == "generate")
    assert gen.kind == "llm" and gen.attrs["gen_ai.usage.output_tokens"] > 0
    prompt_run = workspace.list_runs("prompt")[0]
    assert prompt_run["record"]["trace_id"] == st.trace_id
    # the waterfall survives papermill (the executed notebook) and nbconvert (its HTML copy)
    nb = nbformat.read(run.record["output_notebook"], as_version=4)
    shown = [o for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert len(shown) == 1 and "wf-bar" in shown[0]["data"]["text/html"]
    assert "prompt pp@1" in shown[0]["data"]["text/plain"]
    html = Path(run.record["output_html"]).read_text()
    assert "wf-bar" in html and "check " not in shown[0]["data"]["text/plain"]  # no guard: no checks
