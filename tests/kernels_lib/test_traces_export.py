"""OTLP/HTTP export: a real OTLP receiver decodes what we send; a collector that is down or
answers 500 costs a traced call almost nothing and loses nothing from the workspace."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from testsupport import free_port

from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.tracking import Trace, otel, traces


@contextmanager
def collector(code: int) -> Iterator[tuple[str, list[bytes]]]:
    """An OTLP/HTTP endpoint on 127.0.0.1 answering ``code``; yields (base URL, request bodies)."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(code)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def export_off() -> Iterator[None]:
    yield
    otel.configure("")  # the next test starts without an exporter
    otel.flush(5)
    otel.configure(None)


def _traced_call(n: int = 8) -> Trace:
    """A call with ``n`` nested spans around a little real work."""
    t = Trace("prompt bench@1")
    for i in range(n):
        with t.span(f"step {i}", kind="llm" if i == 3 else "step") as s:
            s.attrs["gen_ai.usage.input_tokens"] = i
            sum(range(200))
    t.end()
    return t


def _median_ms(n: int = 100) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        _traced_call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def test_spans_reach_an_otlp_receiver_with_their_tree(workspace, export_off) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    with collector(200) as (url, bodies):
        otel.configure(url)
        t = Trace("rag ask kb@1")
        with t.span("retrieve", kind="retriever") as r, t.span("embed query", kind="embedding"):
            r.add_event("retrieval.chunks", ids=["a", "b"], scores=[0.9, 0.5])
        with t.span("generate", kind="llm", **{"gen_ai.usage.input_tokens": 12,
                                                "gen_ai.usage.output_tokens": 5}):
            pass
        traces.save(workspace, t)
        assert otel.flush(10)
        assert otel.status()["exported"] >= 4 and otel.status()["endpoint"] == url + "/v1/traces"
    spans = {}
    for body in bodies:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                spans |= {s.name: s for s in ss.spans}
    assert set(spans) == {"rag ask kb@1", "retrieve", "embed query", "generate"}
    assert {s.trace_id.hex() for s in spans.values()} == {t.trace_id}
    assert spans["embed query"].parent_span_id == spans["retrieve"].span_id
    assert spans["retrieve"].parent_span_id == spans["rag ask kb@1"].span_id == bytes.fromhex(t.root.span_id)
    attrs = {a.key: a.value for a in spans["generate"].attributes}
    assert attrs["gen_ai.usage.output_tokens"].int_value == 5
    assert attrs["openinference.span.kind"].string_value == "LLM"
    assert [e.name for e in spans["retrieve"].events] == ["retrieval.chunks"]


@pytest.mark.parametrize("case", ["down", "500"])
def test_a_broken_collector_costs_the_call_almost_nothing(workspace, export_off, case, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")  # give up on the dead one within the test
    otel.configure("")
    before = otel.status()
    _median_ms(5)
    off = _median_ms()
    with collector(500) as (url, bodies):
        if case == "down":
            url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        otel.configure(url)
        _median_ms(5)  # the exporter is built in the background meanwhile
        on = _median_ms()
        t = _traced_call()
        traces.save(workspace, t)
        otel.flush(5)
        if case == "500":
            assert bodies  # it really tried, and got 500s
        after = otel.status()
        assert after["failed"] > before["failed"] and after["exported"] == before["exported"]
    # 8 spans per call; the export path adds a queue append per span, not a request
    assert on - off < 3.0, f"export {case}: {on:.2f} ms vs {off:.2f} ms without export"
    assert len(traces.get(t.trace_id, workspace).spans) == 9  # the workspace has every span


def test_endpoint_from_environment_and_bad_endpoint(monkeypatch, export_off) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")
    otel.configure(None)
    assert otel.traces_endpoint() == "http://127.0.0.1:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom")
    assert otel.traces_endpoint() == "http://c:4318/custom"
    otel.configure("")
    assert otel.traces_endpoint() is None
    with pytest.raises(InvalidInputError, match="http://"):
        otel.configure("localhost:4318")


def test_off_in_the_notebook_reaches_pipeline_kernels(monkeypatch, export_off, tmp_path) -> None:
    """%config Cellops.otlp_endpoint = 'off' (configure("")) wins over an inherited
    OTEL_EXPORTER_OTLP_ENDPOINT in the kernel a pipeline starts: the kernel gets the variables
    of CellSpans.env() on top of this process's environment, as kernel.py builds them."""
    import os
    import subprocess
    import sys

    from cellops.kernels_lib.tracking.cells import CellSpans

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    probe = "from cellops.kernels_lib.tracking import otel; print(otel.traces_endpoint())"

    def kernel_sees() -> str:
        t = Trace("pipeline p.ipynb")
        cells = CellSpans(t, t.root, tmp_path)
        env = {**os.environ, **cells.env()}
        cells.close()
        return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                              check=True, timeout=120).stdout.strip()

    otel.configure("")
    assert kernel_sees() == "None"
    otel.configure(None)  # back to the environment: the kernel exports where this process would
    assert kernel_sees() == "http://127.0.0.1:4318/v1/traces"
    otel.configure("http://127.0.0.1:9/")
    assert kernel_sees() == "http://127.0.0.1:9/v1/traces"
