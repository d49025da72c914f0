"""Nested traces: the span API, the workspace store, OTLP/JSON and the static waterfall."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cellops.kernels_lib.errors import InvalidInputError, NotFoundError
from cellops.kernels_lib.tracking import Trace, traces
from cellops.kernels_lib.tracking.trace import ENV_TRACEPARENT_FILE, traceparent


def test_spans_nest_under_the_open_span_and_errors_keep_the_traceback() -> None:
    t = Trace("chain demo", kind="chain", who="me")
    assert len(t.trace_id) == 32 and int(t.trace_id, 16)
    with t.span("outer", kind="step") as outer:
        with t.span("inner", kind="llm", x=1) as inner:
            inner.attrs["y"] = 2
            inner.add_event("cache.hit", key="k")
    with pytest.raises(ZeroDivisionError), t.span("bad", kind="tool"):
        1 / 0  # noqa: B018
    by = {s.name: s for s in t.spans}
    assert by["outer"].parent_id == t.root.span_id and by["inner"].parent_id == outer.span_id
    assert by["inner"].attrs == {"x": 1, "y": 2} and by["inner"].events[0]["name"] == "cache.hit"
    assert {s.trace_id for s in t.spans} == {t.trace_id}
    assert by["bad"].status == "error" and by["bad"].parent_id == t.root.span_id
    assert "ZeroDivisionError" in by["bad"].events[-1]["attributes"]["exception.stacktrace"]
    assert by["outer"].status == "ok" and by["outer"].end >= by["inner"].end >= by["inner"].start
    with pytest.raises(ValueError, match="not one of"), t.span("x", kind="agent"):
        pass


def test_threads_and_tasks_nest_where_they_run() -> None:
    t = Trace("grid")

    def work(i: int) -> None:  # a fresh thread context: parented to the root
        with t.span(f"cell {i}"), t.span(f"call {i}"):
            time.sleep(0.01)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    async def step(i: int) -> None:
        with t.span(f"task {i}"):
            await asyncio.sleep(0.01)
            with t.span(f"task {i} child"):
                await asyncio.sleep(0)

    async def main() -> None:
        with t.span("gather"):
            await asyncio.gather(step(0), step(1))

    asyncio.run(main())
    by = {s.name: s for s in t.spans}
    for i in range(3):
        assert by[f"cell {i}"].parent_id == t.root.span_id
        assert by[f"call {i}"].parent_id == by[f"cell {i}"].span_id
    for i in range(2):  # concurrent tasks do not adopt each other's spans
        assert by[f"task {i}"].parent_id == by["gather"].span_id
        assert by[f"task {i} child"].parent_id == by[f"task {i}"].span_id


def test_a_trace_made_inside_an_open_span_joins_it(workspace) -> None:
    outer = Trace("chain c")
    with outer.span("step a") as step:
        inner = Trace("prompt p@1")
        with inner.span("generate", kind="llm"):
            pass
        traces.save(workspace, inner, run_id="inner-run")
    traces.save(workspace, outer, run_id="outer-run")
    assert inner.trace_id == outer.trace_id and inner.root.parent_id == step.span_id
    st = traces.get(outer.trace_id, workspace)
    assert st.root.name == "chain c" and len(st.spans) == 4
    assert st.summary.run_id == "outer-run" and st.summary.spans == 4
    assert [s.name for s in st.children(step)] == ["prompt p@1"]


def test_a_remote_parent_from_the_traceparent_file(tmp_path, monkeypatch) -> None:
    parent = Trace("pipeline nb")
    with parent.span("cell 1") as cell:
        f = tmp_path / "tp"
        f.write_text(traceparent(cell))
        monkeypatch.setenv(ENV_TRACEPARENT_FILE, str(f))
    child = Trace("prompt kernel-side")  # in another process this is the only link it has
    assert child.trace_id == parent.trace_id and child.root.parent_id == cell.span_id
    f.write_text("garbage")
    assert Trace("alone").trace_id != parent.trace_id


def test_save_get_search_and_run_reference(workspace) -> None:
    t = Trace("prompt qa@1")
    with t.span("generate", kind="llm") as g:
        g.attrs |= {"gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 7}
    tid = traces.save(workspace, t, run_id="r1")
    bad = Trace("rag ask kb@1")
    with pytest.raises(RuntimeError), bad.span("retrieve", kind="retriever"):
        raise RuntimeError("index gone")
    bad.end(status="error")
    traces.save(workspace, bad)
    got = traces.get(tid[:6], workspace)
    assert [s.name for s in got.spans] == ["prompt qa@1", "generate"]
    s = got.spans[1]
    assert (s.kind, s.parent_id, s.status) == ("llm", got.spans[0].span_id, "ok")
    assert s.attributes["gen_ai.usage.output_tokens"] == 7 and s.end >= s.start
    assert got.summary.input_tokens == 11 and got.summary.output_tokens == 7
    assert [x.name for x in traces.search(workspace=workspace)] == ["rag ask kb@1", "prompt qa@1"]
    assert [x.trace_id for x in traces.search(name="prompt", workspace=workspace)] == [tid]
    assert [x.name for x in traces.search(name="rag*", workspace=workspace)] == ["rag ask kb@1"]
    assert [x.name for x in traces.search(name="kb@1", workspace=workspace)] == ["rag ask kb@1"]  # the ref, last word
    assert [x.name for x in traces.search(status="error", workspace=workspace)] == ["rag ask kb@1"]
    assert traces.search(since="1h", workspace=workspace) and not traces.search(
        since=time.time() + 60, workspace=workspace)
    assert len(traces.search(limit=1, workspace=workspace)) == 1
    with pytest.raises(InvalidInputError, match="age like"):
        traces.search(since="yesterday-ish", workspace=workspace)
    with pytest.raises(NotFoundError, match="%trace list"):
        traces.get("abcdef12", workspace)
    with pytest.raises(InvalidInputError, match="not a trace id"):
        traces.get("<script>", workspace)


def test_otlp_json_and_waterfall_escape(workspace) -> None:
    t = Trace("prompt <b>x</b>")
    with t.span("render", **{"input.value": "<script>alert(1)</script>"}):
        pass
    with t.span("generate", kind="llm", **{"gen_ai.request.model": "default", "gen_ai.usage.input_tokens": 3}):
        pass
    st = traces.get(traces.save(workspace, t), workspace)
    body = st.to_otlp_json()
    spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert [s["name"] for s in spans] == ["prompt <b>x</b>", "render", "generate"]
    assert "parentSpanId" not in spans[0] and spans[2]["parentSpanId"] == spans[0]["spanId"]
    attrs = {a["key"]: a["value"] for a in spans[2]["attributes"]}
    assert attrs["openinference.span.kind"] == {"stringValue": "LLM"}
    assert attrs["llm.token_count.prompt"] == {"intValue": "3"}
    assert int(spans[2]["endTimeUnixNano"]) >= int(spans[2]["startTimeUnixNano"]) > 0
    bundle = st._repr_mimebundle_()
    html = bundle["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;x" in html
    assert html.count("class='wf-row'") == 3 and "wf-bar" in html
    assert "    render (step)" in bundle["text/plain"] and "generate (llm)" in bundle["text/plain"]


def test_saving_costs_no_fsync_and_works_from_any_thread(workspace) -> None:
    def trace() -> Trace:
        t = Trace("prompt x@1")
        for i in range(20):
            with t.span(f"s{i}"):
                pass
        return t

    times = []
    for _ in range(11):
        t = trace()
        t0 = time.perf_counter()
        traces.save(workspace, t)
        times.append(time.perf_counter() - t0)
    # a commit that checkpoints and fsyncs costs ~40 ms on this disk; the span writer never does
    assert sorted(times)[5] < 0.010, f"median save {sorted(times)[5] * 1000:.1f} ms"
    done: list[str] = []
    th = threading.Thread(target=lambda: done.append(traces.save(workspace, trace())))
    th.start()
    th.join()
    assert len(traces.get(done[0], workspace).spans) == 21
    assert len(traces.search(workspace=workspace, limit=100)) == 12


def test_an_interrupted_prompt_run_keeps_an_error_trace_and_reraises(workspace) -> None:
    from cellops.kernels_lib import prompts

    prompts.save("p", "Count from one to twenty.", params={"max_tokens": 32})
    seen: list[str] = []

    def interrupt(token: str) -> None:  # Ctrl-C in the notebook arrives mid-generation
        seen.append(token)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prompts.run("p", on_token=interrupt, cache=False, policy=None)
    (found,) = traces.search(status="error", workspace=workspace)
    stored = traces.get(found.trace_id, workspace)
    assert found.name == "prompt p@1" and stored.root.attrs["error"].startswith("KeyboardInterrupt")
    assert stored.root.events[-1]["attributes"]["exception.type"] == "KeyboardInterrupt"
    statuses = {s.name: s.status for s in stored.spans}
    assert statuses["render"] == "ok" and statuses["generate"] == "error" and len(seen) == 2
    assert workspace.list_runs("prompt") == []
