"""The OpenTelemetry side of cellops spans: our own TracerProvider and the OTLP/HTTP export.

cellops uses its own TracerProvider (never the global one, which belongs to the user's app)
unless ``CELLOPS_OTEL_PROVIDER=global`` or ``configure(provider=...)`` says otherwise. Export is
on when ``configure(endpoint=...)`` (``%config Cellops.otlp_endpoint``) or the standard
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: a
BatchSpanProcessor hands finished spans to a background thread, so a collector that is down or
answers 500 costs the cell one queue append, never an exception or a wait. The export timeout
is OTel's default (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s): a busy collector gets its spans, and a dead one
delays only the final flush at process exit, by at most that.

Attributes go out as given (GenAI semantic conventions: ``gen_ai.*``) plus OpenInference's
``openinference.span.kind`` and token/model names, which Phoenix uses for its kind badges and
token columns.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from ..errors import InvalidInputError

OI_KIND = {"chain": "CHAIN", "llm": "LLM", "retriever": "RETRIEVER", "embedding": "EMBEDDING",
           "guard": "GUARDRAIL", "tool": "TOOL", "reranker": "RERANKER", "step": "CHAIN"}
# GenAI semconv name -> the OpenInference name Phoenix reads for its token and model columns.
OI_MIRROR = {"gen_ai.usage.input_tokens": "llm.token_count.prompt",
             "gen_ai.usage.output_tokens": "llm.token_count.completion",
             "gen_ai.request.model": "llm.model_name"}
DEFAULT_TIMEOUT_S = 10.0  # OTel's own default: a busy collector (Phoenix on 2 loaded cores) needs seconds
MAX_PENDING = 4096  # spans kept while the exporter is being built (then dropped from export only)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.provider: Any = None
        self.tracer: Any = None
        self.switch: Any = None  # our processor that forwards to the current exporter
        self.configured: str | None = None  # set by configure(); "" means explicitly off
        self.active: str | None = None  # the endpoint the current exporter sends to
        self.ready: threading.Event | None = None  # set once the current exporter is installed
        self.stats: dict[str, Any] = {}


_state = _State()


ENV_ENDPOINT = "CELLOPS_OTLP_ENDPOINT"  # what a parent process decided: a URL, or "off"


def traces_endpoint() -> str | None:
    """The OTLP/HTTP traces URL spans go to now, or None (export off). Order: ``configure()``,
    then ``CELLOPS_OTLP_ENDPOINT`` (set by cellops for the processes it starts, e.g. pipeline
    kernels, so "off" in the notebook wins over an inherited OTEL_* variable), then OTEL_*."""
    if _state.configured is not None:
        base = _state.configured
        return traces_url(base) if base else None
    told = os.environ.get(ENV_ENDPOINT, "").strip()
    if told:
        return None if told == "off" else traces_url(told)
    full = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if full:
        return full
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return traces_url(base) if base else None


def traces_url(base: str) -> str:
    if not base.startswith(("http://", "https://")):
        raise InvalidInputError(f"OTLP endpoint {base!r} must start with http:// or https://")
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def configure(endpoint: str | None = None, *, provider: Any = None) -> None:
    """Export to ``endpoint`` (base URL or full /v1/traces URL); "" turns export off, None goes
    back to the environment variables. ``provider`` replaces cellops' TracerProvider."""
    if endpoint:
        traces_url(endpoint)  # validate now: the caller gets the error, not a later span
    with _state.lock:
        _state.configured = endpoint
        if provider is not None:
            _state.provider, _state.tracer, _state.switch = provider, provider.get_tracer("cellops"), None
    _sync_exporter()


def _build() -> None:
    from opentelemetry import trace as ot
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    class Switch(SpanProcessor):  # type: ignore[misc]
        """Forwards ended spans to the current BatchSpanProcessor (the endpoint may change at run
        time); while a new one is being built in the background, spans wait in ``pending``."""

        def __init__(self) -> None:
            self.target: Any = None
            self.pending: list[Any] | None = None  # a list while an exporter is being built

        def on_end(self, span: Any) -> None:
            t, p = self.target, self.pending
            if p is not None and t is None:
                if len(p) < MAX_PENDING:
                    p.append(span)
            elif t is not None:
                t.on_end(span)

        def shutdown(self) -> None:
            if self.target is not None:
                self.target.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            ready = _state.ready
            if ready is not None and not ready.wait(timeout_millis / 1000):
                return False
            return self.target.force_flush(timeout_millis) if self.target is not None else True

    if os.environ.get("CELLOPS_OTEL_PROVIDER", "").lower() == "global":
        provider = ot.get_tracer_provider()
    else:
        resource = Resource.create({
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "cellops"),
            "openinference.project.name": os.environ.get("CELLOPS_OTEL_PROJECT", "cellops")})
        provider = TracerProvider(resource=resource)
    _quiet_export_logs()
    switch = None
    if isinstance(provider, TracerProvider):
        switch = Switch()
        provider.add_span_processor(switch)
    _state.provider, _state.switch = provider, switch
    _state.tracer = provider.get_tracer("cellops")


def _sync_exporter() -> None:
    """Point the exporter at ``traces_endpoint()`` (cheap when nothing changed). The exporter is
    built on a background thread (importing it costs ~0.1 s), so no cell waits for it."""
    url = traces_endpoint()
    if url == _state.active and _state.tracer is not None:
        return
    with _state.lock:
        if _state.tracer is None:
            _build()
        if url == _state.active or _state.switch is None:
            _state.active = url
            return
        _state.active = url
        sw, old = _state.switch, _state.switch.target
        sw.target, sw.pending = None, ([] if url else None)
        ready = _state.ready = threading.Event()
    threading.Thread(target=_install, args=(sw, url, old, ready), name="cellops-otlp-setup",
                     daemon=True).start()


def _install(sw: Any, url: str | None, old: Any, ready: threading.Event) -> None:
    try:
        if old is not None:  # flushing to a dead collector may take its timeout: not in a cell
            old.shutdown()
        if url is None:
            return
        proc = _make_processor(url)
        with _state.lock:
            if _state.active != url:  # reconfigured meanwhile: this one is already stale
                proc.shutdown()
                return
            pending, sw.pending, sw.target = sw.pending or [], None, proc
        for span in pending:
            proc.on_end(span)
    except Exception as e:  # export is best effort; the spans are in the workspace anyway
        _state.stats["last_error"] = f"{type(e).__name__}: {e}"
    finally:
        ready.set()


def _make_processor(url: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

    class Counting(OTLPSpanExporter):  # type: ignore[misc]
        """Counts what reached the collector, so ``status()`` can say why nothing shows up."""

        def export(self, spans: Any) -> Any:
            result = super().export(spans)
            key = "exported" if result == SpanExportResult.SUCCESS else "failed"
            _state.stats[key] = _state.stats.get(key, 0) + len(spans)
            if key == "failed":
                _state.stats["last_error"] = f"export to {url} failed"
            return result

    timeout = float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT", "") or DEFAULT_TIMEOUT_S * 1000) / 1000
    exporter = Counting(endpoint=url, timeout=timeout)
    return BatchSpanProcessor(exporter, schedule_delay_millis=500,
                              export_timeout_millis=int(timeout * 1000))


def child_env() -> dict[str, str]:
    """The variable a process cellops starts needs to export where this one does (or not at all:
    without it, a kernel would fall back to an OTEL_EXPORTER_OTLP_ENDPOINT it inherited)."""
    return {ENV_ENDPOINT: traces_endpoint() or "off"}


def status() -> dict[str, Any]:
    """Where spans go and how that went: endpoint, exported/failed span counts, last error."""
    return {"endpoint": _state.active, "exported": _state.stats.get("exported", 0),
            "failed": _state.stats.get("failed", 0), "last_error": _state.stats.get("last_error")}


def flush(timeout_s: float = 5.0) -> bool:
    """Send what is queued now (tests, the end of a batch run); False if it did not finish."""
    if _state.switch is None:
        return True
    return bool(_state.switch.force_flush(int(timeout_s * 1000)))


def _quiet_export_logs() -> None:
    """A failed export is counted in ``status()``; without this, Python's last-resort handler would
    print the exporter's warning into whichever notebook cell happens to be running."""
    import logging

    for name in ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.sdk.trace.export",
                 "opentelemetry.exporter.otlp"):
        log = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
            log.addHandler(logging.NullHandler())


# -- the span calls trace.py makes --------------------------------------------------------------
def start_span(name: str, start: float, parent: tuple[str, str] | None,
               parent_otel: Any) -> tuple[Any, str, str]:
    """Start an OTel span -> (handle, trace id hex, span id hex)."""
    from opentelemetry import context as oc
    from opentelemetry import trace as ot

    if parent_otel is None:  # a root (or remotely parented) span: the moment to pick up config
        _sync_exporter()
        if parent is None:
            ctx = oc.Context()  # a new trace, never the caller's own OTel current span
        else:
            sc = ot.SpanContext(int(parent[0], 16), int(parent[1], 16), is_remote=True,
                                trace_flags=ot.TraceFlags(ot.TraceFlags.SAMPLED))
            ctx = ot.set_span_in_context(ot.NonRecordingSpan(sc), oc.Context())
    else:
        ctx = ot.set_span_in_context(parent_otel, oc.Context())
    handle = _state.tracer.start_span(name, context=ctx, start_time=int(start * 1e9))
    sc = handle.get_span_context()
    return handle, format(sc.trace_id, "032x"), format(sc.span_id, "016x")


def end_span(s: Any) -> None:
    """Copy the span's final attributes and status onto its OTel span and end it."""
    h = s._otel
    if h is None:
        return
    from opentelemetry.trace import Status, StatusCode

    attrs = flat(s.attrs)
    attrs["openinference.span.kind"] = OI_KIND.get(s.kind, "UNKNOWN")
    attrs["cellops.span.kind"] = s.kind
    for src, dst in OI_MIRROR.items():
        if src in attrs:
            attrs[dst] = attrs[src]
    if "llm.token_count.prompt" in attrs and "llm.token_count.completion" in attrs:
        attrs["llm.token_count.total"] = attrs["llm.token_count.prompt"] + attrs["llm.token_count.completion"]
    h.set_attributes(attrs)
    if s.status == "error":
        h.set_status(Status(StatusCode.ERROR, str(s.attrs.get("error", ""))[:500]))
    else:
        h.set_status(Status(StatusCode.OK))
    h.end(end_time=int(s.end * 1e9))


def add_event(h: Any, ev: dict[str, Any]) -> None:
    if h is not None:
        h.add_event(ev["name"], attributes=flat(ev["attributes"]), timestamp=int(ev["time"] * 1e9))


def flat(attrs: dict[str, Any]) -> dict[str, Any]:
    """OTel accepts str/bool/int/float (and lists of one of them); anything else goes as JSON."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, str | bool | int | float):
            out[k] = v
        elif isinstance(v, list | tuple) and v and all(isinstance(x, str) for x in v):
            out[k] = list(v)
        elif isinstance(v, list | tuple) and v and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
            out[k] = [float(x) for x in v] if any(isinstance(x, float) for x in v) else list(v)
        else:
            out[k] = json.dumps(v, default=str)[:4000]
    return out
