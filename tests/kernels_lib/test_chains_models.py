"""Chains on real models: prompt and generate steps (embedded SmolLM2, few tokens), and tool
calling through llama-cpp-python's function-calling handler and a real OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cellops
from cellops.kernels_lib import chains, prompts

pytestmark = pytest.mark.slow


def weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city."""
    return f"sunny in {city} ({unit})"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = chains.namespace_resolver({"weather": weather, "add": add})


def _spans(trace_id: str) -> dict[str, object]:
    return {s.name: s for s in cellops.traces.get(trace_id).spans}


def test_prompt_and_generate_steps_nest_their_model_calls(workspace) -> None:
    prompts.save("name_it", "Name one {{ thing }}.", params={"max_tokens": 6})
    chains.save("two", {
        "inputs": ["thing"],
        "steps": {
            "named": {"prompt": "name_it@1"},
            "again": {"generate": "Repeat exactly: {{ steps.named.output }}", "params": {"max_tokens": 6}},
        },
        "output": "{{ steps.again.output }}",
    })
    r = chains.run("two", {"thing": "colour"})
    assert r.status == "ok" and r.output == r.steps["again"] and r.steps["named"]
    spans = cellops.traces.get(r.trace_id).spans
    by = {s.name: s for s in spans}
    assert by["named"].kind == "llm" and by["again"].kind == "llm" and by["named"].attrs["cellops.prompt"] == "name_it@1"
    gens = [s for s in spans if s.name == "generate"]
    assert [g.parent_id for g in gens] == [by["named"].span_id, by["again"].span_id]
    assert all(g.attrs["gen_ai.usage.output_tokens"] > 0 for g in gens)
    assert "Name one colour." in gens[0].attrs["input.value"]
    assert r.steps["named"] in gens[1].attrs["input.value"]  # the second call read the first's output
    summary = cellops.traces.search(name="two@1")[0]
    assert summary.output_tokens == sum(g.attrs["gen_ai.usage.output_tokens"] for g in gens)  # no double count
    assert r.results[0].tokens == gens[0].attrs["gen_ai.usage.output_tokens"]


def test_tool_step_embedded_model_forced_choice(workspace) -> None:
    chains.save("wx", {"steps": {"call": {
        "tool": ["weather", "add"], "input": "{{ inputs.q }}", "tool_choice": "weather",
        "params": {"max_tokens": 32}}}})
    r = chains.run("wx", {"q": "What is the weather in Paris?"}, resolver=TOOLS)
    spans = _spans(r.trace_id)
    call = next(e for e in spans["call"].events if e["name"] == "tool_call")["attributes"]
    assert call["tool"] == "weather"
    assert r.output.startswith("sunny in ") and r.output.endswith(")")  # the function ran with the args
    assert spans["call"].kind == "tool" and spans["weather"].kind == "tool"
    assert spans["weather"].parent_id == spans["call"].span_id
    assert spans["chat_tools"].attrs["gen_ai.usage.output_tokens"] > 0


def test_tool_step_through_an_openai_endpoint(workspace, tmp_path: Path) -> None:
    from testsupport import llama_server

    with llama_server(tmp_path, "--chat_format", "chatml-function-calling") as base:
        chains.save("sum", {"model": f"openai:{base}#smollm2", "steps": {"call": {
            "tool": ["add"], "input": "Add {{ inputs.a }} and {{ inputs.b }}.", "tool_choice": "required",
            "params": {"max_tokens": 24}}}})
        r = chains.run("sum", {"a": 2, "b": 3}, resolver=TOOLS)
    spans = _spans(r.trace_id)
    args = next(e for e in spans["call"].events if e["name"] == "tool_call")["attributes"]["arguments"]
    parsed = json.loads(args)
    assert set(parsed) == {"a", "b"} and r.output == parsed["a"] + parsed["b"]  # add ran on the model's args
    assert spans["chat_tools"].attrs["gen_ai.request.model"].startswith("openai:")


def test_rag_ask_step_nests_retrieval_and_generation(workspace) -> None:
    from cellops.kernels_lib import rag

    rag.build("museum", {"docs": [{"id": "hours", "text": "The museum opens at 9 am every day except Monday."},
                                  {"id": "cafe", "text": "The cafe on the roof serves tea and cake."}]},
              progress=False)
    prompts.save("tiny", "{{ context }}\nQ: {{ question }}\nA:", params={"max_tokens": 8})
    chains.save("ask", {"steps": {"answer": {"rag": "museum", "mode": "ask", "query": "{{ inputs.q }}",
                                             "k": 1, "prompt": "tiny@1"}}})
    r = chains.run("ask", {"q": "When does the museum open?"})
    assert r.status == "ok" and r.output == r.steps["answer"] and r.output.strip()
    spans = cellops.traces.get(r.trace_id).spans
    step = next(s for s in spans if s.name == "answer")
    kids = [s for s in spans if s.parent_id == step.span_id]
    assert step.kind == "retriever" and [(s.name, s.kind) for s in kids] == [("retrieve", "retriever"), ("generate", "llm")]
    assert "The museum opens at 9 am" in kids[1].attrs["input.value"]  # the retrieved passage reached the model
    assert isinstance(step.attrs["cellops.citations"], list)


def test_compare_grid_models_reach_the_model_steps(workspace) -> None:
    chains.save("g", {"steps": {"say": {"generate": "Say {{ inputs.word }}.", "params": {"max_tokens": 4}},
                                "pinned": {"generate": "Say no.", "model": "default", "params": {"max_tokens": 2}}}})
    grid = chains.compare_grid(["g@1"], ["default", "llamacpp:default"], [{"vars": {"word": "yes"}}])
    assert [c.label for c in grid.columns] == ["g@1 · default", "g@1 · llamacpp:default"]
    spans = cellops.traces.get(grid.trace_id).spans
    say = [s for s in spans if s.name == "say"]
    pinned = [s for s in spans if s.name == "pinned"]
    assert [s.attrs["gen_ai.request.model"] for s in say] == ["default", "llamacpp:default"]
    assert [s.attrs["gen_ai.request.model"] for s in pinned] == ["default", "default"]  # a step's own model wins
    assert all(c.output is not None and c.error is None for row in grid.cells for c in row)
