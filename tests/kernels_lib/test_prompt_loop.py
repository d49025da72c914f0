"""Cache, compare grid, test cases and feedback export on the embedded model (real calls, few tokens)."""

from __future__ import annotations

import json

import pytest

from cellops.kernels_lib import prompts
from cellops.kernels_lib.errors import CellopsError, InvalidInputError, ModelError, NotFoundError
from cellops.kernels_lib.models import GenParams, get_llm
from cellops.kernels_lib.prompts import cache as C

TOKENS = {"max_tokens": 6}
TOO_LONG = "word " * 5000  # more tokens than the model's context: llama.cpp refuses this case


@pytest.fixture
def cap(workspace):
    prompts.save("cap", "What is the capital of {{ country }}? One word.", params=TOKENS)
    prompts.save("cap", "Name the capital city of {{ country }}.", params=TOKENS)
    prompts.alias("cap@2", "prod")
    return workspace


def test_cache_hits_misses_and_errors_are_not_cached(workspace) -> None:
    stats = C.CacheStats()
    llm = C.CachedLLM(get_llm("default"), workspace, stats)
    msgs = [{"role": "user", "content": "Say hi."}]
    pieces: list[str] = []
    first = llm.generate(msgs, GenParams(max_tokens=5))
    again = llm.generate(msgs, GenParams(max_tokens=5), pieces.append)
    assert (stats.hits, stats.misses) == (1, 1)
    assert again.text == first.text and again.meta["cached"] and not first.meta.get("cached")
    assert "".join(pieces) == first.text  # a hit still streams to the cell
    assert again.latency_s == first.latency_s  # the model's latency, for latency assertions
    llm.generate(msgs, GenParams(max_tokens=5, seed=7))  # another seed is another entry
    assert stats.misses == 2
    with pytest.raises(ModelError, match="context window"):
        llm.generate([{"role": "user", "content": TOO_LONG}], GenParams(max_tokens=5))
    assert C.stats(workspace)["default"]["entries"] == 2  # the error was not stored
    llm.generate([{"role": "user", "content": "Say hi."}], GenParams(max_tokens=5, temperature=0.9, seed=None))
    assert stats.uncacheable == 1 and C.stats(workspace)["default"]["entries"] == 2
    assert prompts.clear_cache("default") == 2 and prompts.cache_stats() == {}


def test_run_uses_the_cache_unless_told_not_to(cap) -> None:
    r1 = prompts.run("cap@prod", {"country": "Peru"})
    r2 = prompts.run("cap@prod", {"country": "Peru"})
    r3 = prompts.run("cap@prod", {"country": "Peru"}, cache=False)
    assert (r1.cached, r2.cached, r3.cached) == (False, True, False)
    assert r1.text == r2.text == r3.text
    rec = cap.get_run(r2.run_id)["record"]
    assert rec["cached"] is True and rec["output"] == r1.text and rec["prompt"] == "cap@2"
    assert "cached" in r2._repr_mimebundle_()["text/plain"]


def test_compare_grid_errors_cache_and_dataframe(cap) -> None:
    cases = [{"country": "France"}, {"country": "Japan"}, {"country": TOO_LONG}]
    grid = prompts.compare_grid(["cap@1", "cap@prod"], on=cases)
    assert [c.label for c in grid.columns] == ["cap@1 · default", "cap@prod (cap@2) · default"]
    assert grid.errors == 2  # the over-long case fails in both columns...
    bad = grid.cells[2]
    assert all(c.error and "context window" in c.error for c in bad)
    assert all(c.output and c.completion_tokens > 0 for row in grid.cells[:2] for c in row)  # ...the rest completes
    assert (grid.stats.hits, grid.stats.misses) == (0, 6)
    # the in-process model runs serially: no two calls overlap
    spans = sorted((c.start_s, c.start_s + c.wall_s) for row in grid.cells for c in row)
    assert all(b[0] >= a[1] - 1e-3 for a, b in zip(spans, spans[1:], strict=False))
    bundle = grid._repr_mimebundle_()
    assert "context window" in bundle["text/html"] and "cap@prod (cap@2)" in bundle["text/html"]
    run = cap.get_run(grid.run_id)
    assert run["kind"] == "prompt_compare" and len(run["record"]["cells"]) == 6

    df = prompts.compare(["cap@1", "cap@prod"], on=cases)
    assert len(df) == 3 and list(df["country"][:2]) == ["France", "Japan"]
    assert df.attrs["cache"] == {"hits": 4, "misses": 2, "uncacheable": 0}  # errors were re-tried
    assert list(df["cap@1 · default"][:2]) == [c.output for c in grid.cells[0][:1] + grid.cells[1][:1]]
    assert df["cap@prod (cap@2) · default error"][2].startswith("the prompt is ")
    assert df["cap@1 · default cached"][:2].all()
    fresh = prompts.compare(["cap@1"], on=cases[:1], cache=False)
    assert fresh.attrs["cache"]["hits"] == 0 and fresh["cap@1 · default"][0] == df["cap@1 · default"][0]


def test_compare_bad_input(cap) -> None:
    with pytest.raises(NotFoundError, match="no version, alias or hash '9'"):
        prompts.compare(["cap@1", "cap@9"], on=[{"country": "Peru"}])
    with pytest.raises(InvalidInputError,
                       match=r"case 2 \(item 1 of the list\) has no value for 'country' used by cap@1"):
        prompts.compare(["cap@1"], on=[{"country": "Peru"}, {"nation": "Chile"}])
    with pytest.raises(NotFoundError, match="unknown model URI 'nope:x'"):
        prompts.compare(["cap@1"], models=["nope:x"], on=[{"country": "Peru"}])
    with pytest.raises(InvalidInputError, match="test case 1, assertion 1: unknown assertion type 'contans'"):
        prompts.compare(["cap@1"], on=[{"vars": {"country": "Peru"}, "assert": [{"type": "contans", "value": 1}]}])
    assert prompts.cache_stats() == {}  # nothing ran


def test_test_cases_pass_fail_and_raise(cap) -> None:
    out = prompts.run("cap@prod", {"country": "France"}).text
    word = out.split()[0]
    cases = [
        {"vars": {"country": "France"}, "description": "france",
         "assert": [{"type": "contains", "value": word}, {"type": "max-length", "value": 500}]},
        {"vars": {"country": "France"}, "assert": [{"type": "not-contains", "value": word}]},
        {"vars": {"country": TOO_LONG}, "assert": [{"type": "max-length", "value": 500}]},
    ]
    report = prompts.test("cap@prod", cases=cases[:1])
    assert report.ok and report.passed == 2 and report.run_id
    assert cap.get_run(report.run_id)["status"] == "passed"
    with pytest.raises(prompts.PromptTestFailed) as e:
        prompts.test("cap@prod", cases=cases, raise_on_failure=True)
    msg = str(e.value)
    assert isinstance(e.value, CellopsError) and "\n" not in msg
    assert "cap@2 failed 2 of 4 assertions" in msg and "case 2 not-contains" in msg and "case 3" in msg
    failed = e.value.report
    assert [r["case"] for r in failed.failures] == [2, 3]
    assert cap.get_run(failed.run_id)["status"] == "failed"
    df = failed.to_frame()
    assert list(df["passed"]) == [True, True, False, False]
    assert "FAIL" in failed._repr_mimebundle_()["text/plain"]


def test_stored_tests_and_missing_tests(cap) -> None:
    with pytest.raises(InvalidInputError, match="cap@2 has no test cases"):
        prompts.test("cap@prod")
    p, _ = prompts.save("cap", "Name the capital city of {{ country }}.", params=TOKENS,
                        tests=[{"vars": {"country": "Peru"}, "assert": [{"type": "max-length", "value": 1}]}])
    assert p.version == 3
    r = prompts.test("cap")
    assert not r.ok and r.failures[0]["assertion"] == "max-length 1"
    with pytest.raises(InvalidInputError, match="has an 'assert' list"):
        prompts.test("cap", cases=[{"country": "Peru"}])


def test_feedback_export_is_finetune_data(cap, tmp_path) -> None:
    from cellops.kernels_lib.train import data

    single = prompts.run("cap@1", {"country": "Chile"})
    prompts.rate(single.run_id, "up", "good")
    # the same rendered input, cut at 2 tokens: a worse answer to the same prompt
    grid = prompts.compare_grid(["cap@1", "cap@prod"], on=[{"country": "Chile"}], params={"max_tokens": 2})
    prompts.rate(grid.run_id, "down", "cut short", cell="0:0")
    prompts.rate(grid.run_id, "up", cell="0:1")
    rec = cap.get_run(grid.run_id)["record"]
    assert rec["feedback"]["0:0"] == {**rec["feedback"]["0:0"], "rating": -1, "comment": "cut short"}
    assert len(prompts.list_feedback("cap")) == 3

    sft = prompts.export_feedback("cap", "sft", tmp_path / "sft.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert sft.rows == len(rows) == 2 and rows[0]["messages"][-1] == {"role": "assistant", "content": single.text}
    assert rows[1]["messages"][-1]["content"] == grid.cells[0][1].output
    assert len(data.load(tmp_path / "sft.jsonl").rows) == 2  # what %%finetune reads

    # the same input (cap@1, Chile) got 👍 once and 👎 once: one preference pair
    pref = prompts.export_feedback("cap", "preference", tmp_path / "pref.jsonl")
    pair = json.loads((tmp_path / "pref.jsonl").read_text())
    assert pref.rows == 1 and pair["prompt"] == single.messages
    assert pair["chosen"][0]["content"] == single.text
    assert pair["rejected"][0]["content"] == grid.cells[0][0].output != single.text
    assert data.load(tmp_path / "pref.jsonl", preference=True).format == "preference"  # --method dpo
    with pytest.raises(InvalidInputError, match="holds preference rows"):
        data.load(tmp_path / "pref.jsonl")  # SFT refuses pairs with one line


def test_feedback_bad_input(cap, tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="no ratings for prompt 'cap'"):
        prompts.export_feedback("cap", "sft", tmp_path / "x.jsonl")
    r = prompts.run("cap@1", {"country": "Peru"})
    with pytest.raises(InvalidInputError, match="rating must be up or down"):
        prompts.rate(r.run_id, "meh")
    with pytest.raises(InvalidInputError, match="single prompt run; rate it without a cell"):
        prompts.rate(r.run_id, "up", cell="0:0")
    grid = prompts.compare_grid(["cap@1"], on=[{"country": TOO_LONG}])
    with pytest.raises(InvalidInputError, match="no output to rate"):
        prompts.rate(grid.run_id, "up", cell="0:0")
    with pytest.raises(NotFoundError, match="has no cell '5:0'"):
        prompts.rate(grid.run_id, "up", cell="5:0")
    prompts.rate(r.run_id, "down")
    with pytest.raises(InvalidInputError, match="no up-rated outputs"):
        prompts.export_feedback("cap", "sft", tmp_path / "x.jsonl")
    with pytest.raises(InvalidInputError, match="no preference pairs"):
        prompts.export_feedback("cap", "preference", tmp_path / "x.jsonl")
    with pytest.raises(InvalidInputError, match="unknown export format"):
        prompts.export_feedback("cap", "dpo", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
