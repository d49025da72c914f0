"""%trace list | show | diff | status, and the nested traces %%prompt and the grid leave behind."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib.tracking import traces
from cellops.magics import trace as trace_magic


def test_parse_into_a_frozen_dataclass() -> None:
    a = trace_magic.parse("list --name prompt --last 3 --status error")
    assert (a.command, a.name, a.last, a.status) == ("list", "prompt", 3, "error")
    assert trace_magic.parse("diff ab12 cd34 -o d").ids == ("ab12", "cd34")
    with pytest.raises(UsageError, match="unknown %trace command 'frob'"):
        trace_magic.parse("frob")
    with pytest.raises(UsageError, match="%trace diff"):
        trace_magic.parse("diff onlyone")
    with pytest.raises(UsageError, match="--last"):
        trace_magic.parse("list --last many")


def test_bad_input_is_one_line(ip, caplog) -> None:
    with pytest.raises(UsageError, match="no trace \\(or run\\) 'abcdef'"):
        ip.run_line_magic("trace", "show abcdef")
    with pytest.raises(UsageError, match="not a trace id"):
        ip.run_line_magic("trace", "show <x>")
    ip.run_line_magic("config", "Cellops.otlp_endpoint = 'off'")
    ip.run_line_magic("config", "Cellops.otlp_endpoint = 'localhost:4318'")  # %config logs one line
    assert "must start with http:// or https://" in caplog.text
    assert "export: off" in ip.run_line_magic("trace", "status")._repr_mimebundle_()["text/plain"]
    ip.run_line_magic("config", "Cellops.otlp_endpoint = ''")
    out = ip.run_line_magic("trace", "list")._repr_mimebundle_()
    assert "no traces yet" in out["text/plain"] and "text/html" in out


@pytest.mark.slow
def test_prompt_traces_list_show_diff(ip, workspace) -> None:
    ip.run_line_magic("guard", "on default")
    ip.user_ns["t_thing"] = "the sea"
    ip.run_cell_magic("prompt", "tr --max-tokens 12 -o t_a", "Write one line about {{ t_thing }}.")
    ip.user_ns["t_thing"] = "a mountain"
    ip.run_cell_magic("prompt", "tr --max-tokens 12 -o t_b", "Write one line about {{ t_thing }}.")
    a, b = ip.user_ns["t_a"], ip.user_ns["t_b"]
    assert workspace.get_run(a.run_id)["record"]["trace_id"] == a.trace_id
    st = traces.get(a.trace_id)
    by = {s.name: s for s in st.spans}
    assert st.root.name == "prompt tr@1" and st.summary.run_id == a.run_id
    rail = by["guard.input"]
    checks = [s for s in st.children(rail) if s.name.startswith("check ")]
    assert len(checks) >= 2 and all(s.kind == "guard" and "guard.triggered" in s.attrs for s in checks)
    assert all(s.events[0]["name"] == "guard.verdict" for s in checks)
    assert rail.events[-1]["name"] == "guard.verdict" and rail.events[-1]["attributes"]["allowed"]
    gen = by["generate"]
    assert gen.kind == "llm" and gen.parent_id == st.root.span_id
    assert gen.attrs["gen_ai.usage.output_tokens"] == a.generation.completion_tokens
    assert gen.attrs["gen_ai.request.model"] == "default" and gen.attrs["output.value"] == a.generation.text
    assert "the sea" in gen.attrs["input.value"] and "guard.output" in by
    folded = a._repr_mimebundle_()["text/html"]  # the call's own output carries its waterfall
    assert f"trace {a.trace_id[:12]}" in folded and folded.count("class='wf-row'") == len(st.spans)

    listed = ip.run_line_magic("trace", "list --name prompt --last 5 -o t_l")
    assert [t.trace_id for t in listed] == [b.trace_id, a.trace_id]
    assert len(ip.run_line_magic("trace", "list --last 1")) == 1
    shown = ip.run_line_magic("trace", f"show {a.run_id}")  # a run id finds its trace
    html = shown._repr_mimebundle_()["text/html"]
    assert shown.trace_id == a.trace_id and "wf-bar" in html and "check injection" in html

    d = ip.run_line_magic("trace", f"diff {a.trace_id[:10]} {b.trace_id[:10]}")
    steps = {s.path: s for s in d.steps}
    assert "generate" in steps and "guard.input/check injection" in steps
    assert steps["render"].change == "" and steps["generate"].a.span_id == gen.span_id
    if a.text != b.text:  # the small model may repeat itself; when it does not, the diff says so
        assert steps["generate"].change == "output"
    text = d._repr_mimebundle_()["text/plain"]
    assert "delta ms" in text and f"{a.trace_id[:12]}" in text


@pytest.mark.slow
def test_compare_grid_is_one_trace_with_a_span_per_cell(ip, workspace) -> None:
    ip.run_cell_magic("prompt", "g1 --no-run --max-tokens 4", "Say {{ w }}.")
    ip.run_cell_magic("prompt", "g1 --no-run --max-tokens 4", "Shout {{ w }}.")
    ip.user_ns["t_cases"] = [{"w": "yes"}, {"w": "no"}]
    grid = ip.run_line_magic("prompt", "compare g1@1 g1@2 --on t_cases")
    st = traces.get(grid.trace_id)
    cells = st.children(st.root)
    assert st.summary.run_id == grid.run_id and len(cells) == 4
    assert sorted(c.attrs["cellops.case"] for c in cells) == [1, 1, 2, 2]
    for c in cells:  # each cell's model call nests under its own cell span, thread or not
        (gen,) = [s for s in st.children(c) if s.name == "generate"]
        assert gen.kind == "llm" and gen.attrs["gen_ai.usage.output_tokens"] >= 1


@pytest.mark.slow
def test_a_cell_with_a_dead_collector_still_runs_and_keeps_its_trace(ip, workspace, monkeypatch) -> None:
    from testsupport import free_port

    from cellops.kernels_lib.tracking import otel

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")  # give up on the dead one within the test
    before = otel.status()["failed"]
    ip.run_line_magic("config", f"Cellops.otlp_endpoint = 'http://127.0.0.1:{free_port()}'")
    try:
        ip.run_cell_magic("prompt", "dead --max-tokens 4 -o t_r", "Say yes.")
        otel.flush(10)
        status = ip.run_line_magic("trace", "status")._repr_mimebundle_()["text/plain"]
    finally:
        ip.run_line_magic("config", "Cellops.otlp_endpoint = ''")
    r = ip.user_ns["t_r"]
    assert r.text and len(traces.get(r.trace_id).spans) >= 4
    assert otel.status()["failed"] > before and "failed" in status and "127.0.0.1" in status


@pytest.mark.slow
def test_live_waterfall_fills_in_while_compare_and_test_grids_run(ip, workspace, live_views) -> None:
    """A span per grid cell shows while the grid's workers run; at the end the output keeps the
    finished waterfall as static HTML (the grids' results carry none) and the widget closes."""
    ip.run_cell_magic("prompt", "lg --no-run --max-tokens 2", "Say {{ w }}.\n---\n"
                      "- vars: {w: yes}\n  assert: [{type: not-contains, value: zqxj}]")
    ip.user_ns["t_cases"] = [{"w": "yes"}, {"w": "no"}]
    ip.run_line_magic("prompt", "compare lg@1 --on t_cases")
    ip.run_line_magic("prompt", "test lg@1")
    assert len(live_views.views) == 2 and all(v.widget.comm is None for v in live_views.views)
    grid_root = live_views.views[0].trace.root
    assert grid_root.name == "prompt grid" and grid_root.end is not None
    cells = [sum(n.startswith("cell ") for n in names) for names in live_views.running()]
    assert 1 in cells and 2 in cells and cells.index(1) < cells.index(2), live_views.states  # filling in
    assert cells[-1] == 1 and live_views.views[1].trace.root.end is not None  # the test grid's one case
    settled = [o["data"].get("text/html", "") for o in ip.display_pub.outputs if o.get("update")]
    assert sum("wf-name" in h and "prompt grid" in h for h in settled) == 2
