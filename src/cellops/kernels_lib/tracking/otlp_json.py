"""Stored spans as OTLP/JSON (``ExportTraceServiceRequest``), the body a collector accepts at
``POST /v1/traces`` with ``Content-Type: application/json``: ids as hex, times as strings of
nanoseconds, attributes as typed ``AnyValue``s, the same attributes the live export sends."""

from __future__ import annotations

from typing import Any

from .otel import OI_KIND, OI_MIRROR, flat

_SPAN_KIND_INTERNAL = 1
_STATUS = {"unset": 0, "ok": 1, "error": 2}


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # int64 is a string in OTLP/JSON
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": str(v)}


def _attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in flat(d).items()]


def _ns(t: float | None) -> str:
    return str(int((t or 0.0) * 1e9))


def _span(s: Any) -> dict[str, Any]:
    attrs = dict(s.attrs) | {"openinference.span.kind": OI_KIND.get(s.kind, "UNKNOWN"),
                             "cellops.span.kind": s.kind}
    attrs |= {dst: s.attrs[src] for src, dst in OI_MIRROR.items() if src in s.attrs}
    out = {
        "traceId": s.trace_id, "spanId": s.span_id, "name": s.name, "kind": _SPAN_KIND_INTERNAL,
        "startTimeUnixNano": _ns(s.start), "endTimeUnixNano": _ns(s.end if s.end is not None else s.start),
        "attributes": _attrs(attrs),
        "events": [{"timeUnixNano": _ns(e["time"]), "name": e["name"], "attributes": _attrs(e["attributes"])}
                   for e in s.events],
        "status": {"code": _STATUS.get(s.status, 0)} | (
            {"message": str(s.attrs.get("error", ""))[:500]} if s.status == "error" else {}),
    }
    if s.parent_id:
        out["parentSpanId"] = s.parent_id
    return out


def encode(resource: dict[str, Any], spans: list[Any]) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": _attrs(resource)},
        "scopeSpans": [{"scope": {"name": "cellops"}, "spans": [_span(s) for s in spans]}],
    }]}
