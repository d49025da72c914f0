"""OTLP export to a real Arize Phoenix: the spans read back through Phoenix's own REST API have
our names, our tree (parent ids) and our token counts."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from cellops.kernels_lib import rag
from cellops.kernels_lib.tracking import otel, traces

DOCS = [{"id": "tower", "text": "The Eiffel Tower in Paris was completed in 1889 for the World's Fair."},
        {"id": "bridge", "text": "The Golden Gate Bridge in San Francisco opened in 1937."}]


def phoenix_spans(base: str, trace_id: str, expect: int, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Phoenix's spans of one trace (project ``cellops``), polled until ``expect`` have arrived:
    Phoenix ingests OTLP asynchronously."""
    deadline, spans = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/v1/projects/cellops/spans", params={"trace_id": trace_id, "limit": 1000},
                      timeout=10)
        if r.status_code == 200:
            spans = r.json()["data"]
            if len(spans) >= expect:
                return spans
        time.sleep(0.5)
    pytest.fail(f"Phoenix has {len(spans)} of {expect} spans of trace {trace_id} after {timeout:.0f} s")


@pytest.mark.slow
def test_rag_ask_spans_read_back_from_phoenix(ip, phoenix: str, workspace) -> None:
    rag.build("kb", {"docs": DOCS}, progress=False)
    ip.run_line_magic("config", f"Cellops.otlp_endpoint = '{phoenix}'")
    try:
        ip.run_cell_magic("rag", "ask kb -k 2 -o t_a", "When was the Eiffel Tower completed?")
        answer = ip.user_ns["t_a"]
        assert otel.flush(30)
    finally:
        ip.run_line_magic("config", "Cellops.otlp_endpoint = ''")
    ours = traces.get(answer.trace_id, workspace)
    theirs = phoenix_spans(phoenix, answer.trace_id, len(ours.spans))
    assert len(theirs) == len(ours.spans)
    by_id = {s["context"]["span_id"]: s for s in theirs}
    for s in ours.spans:  # same ids, names, parents (the tree) and kinds
        p = by_id[s.span_id]
        assert p["context"]["trace_id"] == answer.trace_id and p["name"] == s.name
        assert p["parent_id"] == s.parent_id
        assert p["span_kind"] == otel.OI_KIND[s.kind]
    names = {s.name: by_id[s.span_id] for s in ours.spans}
    assert {"rag ask kb@1", "retrieve", "embed query", "render", "generate"} <= set(names)
    assert names["embed query"]["parent_id"] == names["retrieve"]["context"]["span_id"]
    gen = names["generate"]["attributes"]
    assert gen["llm.token_count.completion"] == answer.generation.completion_tokens > 0
    assert gen["llm.token_count.prompt"] == answer.generation.prompt_tokens
    assert gen["gen_ai.usage.output_tokens"] == answer.generation.completion_tokens
    assert names["retrieve"]["attributes"]["retrieval.documents.0.document.id"] == answer.passages[0].chunk.id


CHAIN = """
inputs: [text]
steps:
  words: {python: split, args: {s: "{{ inputs.text }}"}}
  upper:
    map: "{{ steps.words.output }}"
    as: w
    step: {python: up, args: {t: "{{ w }}"}}
  answer: {generate: "Say {{ steps.upper.output | join(' ') }}.", params: {max_tokens: 6}}
output: "{{ steps.answer.output }}"
"""


@pytest.mark.slow
def test_chain_spans_read_back_from_phoenix(phoenix: str, workspace) -> None:
    from cellops.kernels_lib import chains

    chains.save("shout", CHAIN)
    resolver = chains.namespace_resolver({"split": lambda s: s.split(), "up": lambda t: t.upper()})
    otel.configure(phoenix)
    try:
        r = chains.run("shout", {"text": "hello big world"}, resolver=resolver)
        assert otel.flush(30)
    finally:
        otel.configure(None)
    ours = traces.get(r.trace_id, workspace)
    theirs = {s["context"]["span_id"]: s for s in phoenix_spans(phoenix, r.trace_id, len(ours.spans))}
    assert len(theirs) == len(ours.spans)
    for s in ours.spans:
        assert (theirs[s.span_id]["name"], theirs[s.span_id]["parent_id"]) == (s.name, s.parent_id)
    by = {s.name: s for s in ours.spans}
    mapped = [s for s in ours.spans if s.parent_id == by["upper"].span_id]
    assert [s.name for s in mapped] == ["upper[0]", "upper[1]", "upper[2]"]  # nesting kept in Phoenix
    gen = by["generate"]  # the model call nested in the "answer" step (which carries no tokens)
    assert gen.parent_id == by["answer"].span_id
    assert theirs[gen.span_id]["span_kind"] == "LLM"
    assert theirs[gen.span_id]["attributes"]["llm.token_count.completion"] == \
        gen.attrs["gen_ai.usage.output_tokens"] > 0
