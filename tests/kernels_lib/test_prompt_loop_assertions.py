"""Assertion catalogue, case loading and the cache key (no LLM call; `similar` uses the real embedder)."""

from __future__ import annotations

import json

import pytest

from cellops.kernels_lib.errors import InvalidInputError, NotFoundError
from cellops.kernels_lib.models.base import Generation, GenParams
from cellops.kernels_lib.prompts import assertions as A
from cellops.kernels_lib.prompts.cache import cache_key, cacheable
from cellops.kernels_lib.prompts.cases import load_cases


def ev(a: dict, out: str, latency_s: float = 0.5) -> A.Check:
    A.validate(a, "t")
    return A.evaluate(a, out, Generation(out, "m", 3, 4, latency_s))


@pytest.mark.parametrize("a, out, passed", [
    ({"type": "equals", "value": "Paris"}, " Paris\n", True),
    ({"type": "equals", "value": "Paris"}, "Paris.", False),
    ({"type": "contains", "value": "Paris"}, "It is Paris.", True),
    ({"type": "contains", "value": "paris"}, "It is Paris.", False),
    ({"type": "icontains", "value": "paris"}, "It is Paris.", True),
    ({"type": "not-contains", "value": "London"}, "It is Paris.", True),
    ({"type": "not-icontains", "value": "PARIS"}, "It is Paris.", False),
    ({"type": "contains-any", "value": ["Rome", "Paris"]}, "Paris", True),
    ({"type": "contains-any", "value": "Rome, Oslo"}, "Paris", False),
    ({"type": "contains-all", "value": ["red", "blue"]}, "red and blue", True),
    ({"type": "contains-all", "value": ["red", "green"]}, "red and blue", False),
    ({"type": "icontains-all", "value": ["RED", "Blue"]}, "red and blue", True),
    ({"type": "icontains-any", "value": ["GREEN"]}, "red and blue", False),
    ({"type": "starts-with", "value": "Yes"}, "  Yes, it is.", True),
    ({"type": "regex", "value": r"\b\d{4}\b"}, "born in 1815", True),
    ({"type": "not-regex", "value": r"\d"}, "no digits", True),
    ({"type": "is-json"}, '{"a": 1}', True),
    ({"type": "is-json"}, "```json\n{\"a\": 1}\n```", True),
    ({"type": "is-json"}, "{a: 1}", False),
    ({"type": "not-is-json"}, "plain text", True),
    ({"type": "is-json", "value": {"type": "object", "required": ["name"],
                                   "properties": {"name": {"type": "string"}}}}, '{"name": "x"}', True),
    ({"type": "is-json", "value": {"type": "object", "required": ["name"]}}, '{"nom": "x"}', False),
    ({"type": "max-length", "value": 5}, "12345", True),
    ({"type": "max-length", "value": 5}, "123456", False),
    ({"type": "latency", "threshold": 1000}, "x", True),
])
def test_deterministic_assertions(a: dict, out: str, passed: bool) -> None:
    check = ev(a, out)
    assert check.passed is passed, check.reason
    assert check.type == a["type"] and check.reason


def test_latency_uses_the_model_latency() -> None:
    assert not ev({"type": "latency", "threshold": 100}, "x", latency_s=0.25).passed
    c = ev({"type": "latency", "threshold": 300}, "x", latency_s=0.25)
    assert c.passed and c.score == pytest.approx(250)


def test_json_schema_failure_names_the_field() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}}
    c = ev({"type": "is-json", "value": schema}, '{"age": "ten"}')
    assert not c.passed and "age" in c.reason


def test_similar_uses_the_embedder() -> None:
    ref = "The capital of France is Paris."
    close = ev({"type": "similar", "value": ref}, "Paris is the capital city of France.")
    far = ev({"type": "similar", "value": ref}, "Bananas are rich in potassium.")
    assert close.passed and not far.passed
    assert close.score > far.score + 0.3
    strict = ev({"type": "similar", "value": ref, "threshold": 0.999}, "Paris is the capital city of France.")
    assert not strict.passed
    assert ev({"type": "not-similar", "value": ref}, "Bananas are rich in potassium.").passed


def test_rubric_grader_gets_model_rubric_and_output() -> None:
    seen = []

    def grader(model: str, rubric: str, output: str) -> str:
        seen.append((model, rubric, output))
        return "FAIL: it is rude" if "idiot" in output else "PASS - polite"

    a = {"type": "llm-rubric", "value": "is polite", "model": "openai:http://h/v1#judge"}
    A.validate(a, "t")
    ok = A.evaluate(a, "Thank you!", None, grader=grader)
    bad = A.evaluate(a, "you idiot", None, grader=grader)
    assert ok.passed and not bad.passed and "rude" in bad.reason
    assert seen[0] == ("openai:http://h/v1#judge", "is polite", "Thank you!")
    assert A.parse_verdict('{"pass": false, "reason": "x"}') is False
    assert A.parse_verdict("The answer PASSES the rubric") is True
    assert A.parse_verdict("maybe") is None
    undecided = A.evaluate(a, "hmm", None, grader=lambda *_: "I cannot say")
    assert not undecided.passed and "no PASS/FAIL" in undecided.reason


@pytest.mark.parametrize("a, message", [
    ({"type": "contans", "value": "x"}, "unknown assertion type 'contans'"),
    ({"value": "x"}, "mapping with a 'type'"),
    ({"type": "contains"}, "needs a text 'value'"),
    ({"type": "regex", "value": "(unclosed"}, "not a valid regular expression"),
    ({"type": "is-json", "value": {"type": "objekt"}}, "not a valid JSON schema"),
    ({"type": "max-length", "value": "ten"}, "positive integer"),
    ({"type": "latency"}, "threshold' in milliseconds"),
    ({"type": "similar", "value": "x", "threshold": 3}, "between -1 and 1"),
    ({"type": "contains", "value": "x", "weight": 2}, "unknown key(s) weight"),
    ({"type": "contains", "value": "x", "model": "default"}, "only applies to llm-rubric"),
    ({"type": "contains-any", "value": []}, "non-empty list"),
])
def test_malformed_assertion_is_named(a: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match="test case 2, assertion 3") as e:
        A.validate_cases([{"assert": []}, {"assert": [{"type": "equals", "value": "a"}] * 2 + [a]}])
    assert message in str(e.value)


def test_cases_from_files_and_frames(tmp_path) -> None:
    import pandas as pd

    (tmp_path / "c.csv").write_text("country,style\nFrance,short\nItaly,\n")
    cases = load_cases(tmp_path / "c.csv")
    assert [c.vars for c in cases] == [{"country": "France", "style": "short"}, {"country": "Italy", "style": ""}]
    assert cases[1].where == "line 3 of c.csv"
    (tmp_path / "c.jsonl").write_text(json.dumps({"vars": {"q": 1}, "assert": [{"type": "equals", "value": 1}]})
                                      + "\n\n" + json.dumps({"q": 2}) + "\n")
    j = load_cases(tmp_path / "c.jsonl")
    assert j[0].asserts and j[0].vars == {"q": 1} and j[1].vars == {"q": 2} and j[1].where == "line 3 of c.jsonl"
    (tmp_path / "c.yaml").write_text("tests:\n- vars: {q: a}\n  description: first\n")
    assert load_cases(tmp_path / "c.yaml")[0].label == "first"
    df = pd.DataFrame({"q": ["a", None]})
    assert load_cases(df)[1].vars == {}  # a blank cell is a missing variable, named later
    with pytest.raises(InvalidInputError, match="bad.jsonl line 2 is not valid JSON"):
        (tmp_path / "bad.jsonl").write_text('{"q": 1}\n{oops\n')
        load_cases(tmp_path / "bad.jsonl")
    with pytest.raises(InvalidInputError, match=r"case 1 \(item 0 of the list\) has unknown key\(s\) asserts"):
        load_cases([{"vars": {}, "asserts": []}])
    with pytest.raises(NotFoundError, match="cases file not found"):
        load_cases(tmp_path / "nope.csv")


def test_cache_key_covers_model_weights_messages_params() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    base = cache_key("default", "w1", msgs, GenParams())
    assert base == cache_key("default", "w1", [dict(m) for m in msgs], GenParams())
    assert base != cache_key("default", "w2", msgs, GenParams())
    assert base != cache_key("hf:default", "w1", msgs, GenParams())
    assert base != cache_key("default", "w1", [{"role": "user", "content": "hi "}], GenParams())
    assert base != cache_key("default", "w1", msgs, GenParams(seed=1))
    assert base != cache_key("default", "w1", msgs, GenParams(max_tokens=7))
    assert cacheable(GenParams(temperature=0.8, seed=3)) and not cacheable(GenParams(temperature=0.8, seed=None))
