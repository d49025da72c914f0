"""Chains: spec validation (one line per bad input, nothing saved), python/map/when steps,
references, traces and run records, guard and rag steps, assertions on steps, compare grids."""

from __future__ import annotations

import pytest

import cellops
from cellops.kernels_lib import chains, guard, rag
from cellops.kernels_lib.errors import CellopsError, InvalidInputError, NotFoundError

TEXT_CHAIN = """
inputs: {text: ~, sep: "-"}
steps:
  words: {python: split, args: {s: "{{ inputs.text }}"}}
  upper:
    map: "{{ steps.words.output }}"
    as: w
    step: {python: up, args: {t: "{{ w }}"}}
  count: {python: count, args: {xs: "{{ steps.upper.output }}"}, when: "steps.words.output | length > 1"}
  never: {python: count, args: {xs: "{{ steps.upper.output }}"}, when: "inputs.sep == '+'"}
output: "{{ steps.upper.output | join(inputs.sep) }}"
"""

NS = {"split": lambda s: s.split(), "up": lambda t: t.upper(), "count": lambda xs: len(xs)}


def resolver(**extra):
    return chains.namespace_resolver(NS | extra)


def test_python_map_when_references_trace_and_record(workspace) -> None:
    assert chains.save("text", TEXT_CHAIN) == (1, True)
    assert chains.save("text", TEXT_CHAIN + "\n# a comment changes nothing\n") == (1, False)
    r = chains.run("text", {"text": "a b c"}, resolver=resolver())
    assert r.output == "A-B-C" and r.status == "ok"
    assert r.steps == {"words": ["a", "b", "c"], "upper": ["A", "B", "C"], "count": 3, "never": None}
    assert [x.status for x in r.results] == ["ok", "ok", "ok", "skipped"]
    assert len(r.trace_id) == 32 and int(r.trace_id, 16)

    spans = cellops.traces.get(r.trace_id).spans
    root = spans[0]
    assert (root.name, root.kind, root.parent_id, root.status) == ("chain text@1", "chain", None, "ok")
    by_name = {s.name: s for s in spans}
    assert [s.name for s in spans if s.parent_id == root.span_id] == ["words", "upper", "count", "never"]
    assert [s.name for s in spans if s.parent_id == by_name["upper"].span_id] == ["upper[0]", "upper[1]", "upper[2]"]
    assert {by_name[n].kind for n in ("words", "upper", "upper[0]")} == {"step"}
    assert by_name["never"].attrs["cellops.skipped"] is True
    assert by_name["words"].attrs["output.value"] == '["a", "b", "c"]'
    assert root.attrs["output.value"] == "A-B-C"

    run = workspace.get_run(r.run_id)
    assert run["kind"] == "chain" and run["name"] == "text" and run["version"] == 1
    assert run["record"]["trace_id"] == r.trace_id and run["record"]["output"] == "A-B-C"
    bundle = r._repr_mimebundle_()
    assert "A-B-C" in bundle["text/plain"] and "skipped" in bundle["text/html"]
    assert "wf-bar" in bundle["text/html"]  # the run's static trace waterfall


def test_inputs_defaults_missing_unknown_and_html_escaped(workspace) -> None:
    chains.save("text", TEXT_CHAIN)
    r = chains.run("text", {"text": "<b>x</b> y", "sep": "+"}, resolver=resolver())
    assert r.output == "<B>X</B>+Y" and r.steps["never"] == 2
    html = r._repr_mimebundle_()["text/html"]
    assert "<B>X</B>" not in html and "&lt;B&gt;X&lt;/B&gt;" in html
    with pytest.raises(InvalidInputError, match=r"chain text@1 needs input\(s\) text: pass -p text=\.\.\."):
        chains.run("text", {}, resolver=resolver())
    with pytest.raises(InvalidInputError, match="has no input 'txt'; its inputs: text, sep"):
        chains.run("text", {"text": "a", "txt": "b"}, resolver=resolver())
    assert workspace.list_runs("chain") and len(workspace.list_runs("chain")) == 1


def test_module_function_resolver_cli_and_missing_function(workspace, capsys) -> None:
    import json

    from cellops.cli import main

    chains.save("base", {"steps": {"b": {"python": "os.path:basename", "args": {"p": "{{ inputs.path }}"}}}})
    seen = []
    assert chains.run("base", {"path": "/a/b/c.txt"}, on_trace=lambda t: t.subscribe(
        lambda span, what: seen.append((span.name, what)))).output == "c.txt"
    assert ("b", "start") in seen and seen[-1] == ("chain base@1", "end")  # a live view sees every span
    assert main(["chain", "run", "base", "-p", "path=/x/y.csv", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["output"] == "y.csv" and out["steps"] == {"b": "y.csv"} and len(out["trace_id"]) == 32
    assert main(["chain", "list"]) == 0 and "base@1" in capsys.readouterr().out
    assert main(["chain", "run", "base"]) == 2  # a missing input: one line, exit 2
    assert "needs input(s) path" in capsys.readouterr().err
    chains.save("nb", {"steps": {"f": {"python": "not_defined_here"}}})
    with pytest.raises(NotFoundError, match=r"chain nb@1, step 'f', key 'python': no function named "
                                            r"'not_defined_here' in the notebook"):
        chains.run("nb", {}, resolver=resolver())
    assert workspace.list_runs("chain", "nb") == []  # resolved before any step ran: nothing recorded


BAD = {
    "malformed YAML": ("steps:\n  a:\n    python: split\n    args: {s: \"{{ inputs.q }}\"\n  b:\n    python: up\n",
                       r"chain bad, step 'a', key 'args': malformed YAML on line 5 \(in what began on line 4\)"),
    "unknown step type": ("steps:\n  a: {pyhton: split}\n",
                          r"chain bad, step 'a': unknown step type 'pyhton'; valid types: prompt, generate, "
                          r"rag, guard, python, tool, map"),
    "two step types": ("steps:\n  a: {python: split, generate: hi}\n",
                       r"chain bad, step 'a': has more than one step type \(python, generate\); valid types: "),
    "missing step": ("steps:\n  a: {python: split, args: {s: \"{{ steps.nope.output }}\"}}\n",
                     r"chain bad, step 'a': refers to steps.nope, which does not exist"),
    "later step": ("steps:\n  a: {python: split, args: {s: \"{{ steps.b.output }}\"}}\n  b: {python: up}\n",
                   r"chain bad, step 'a': refers to steps.b, which comes later; move 'b' above 'a'"),
    "cycle": ("steps:\n  a: {python: split, args: {s: \"{{ steps.b.output }}\"}}\n"
              "  b: {python: up, args: {t: \"{{ steps.a.output }}\"}}\n",
              r"chain bad, step 'a': steps form a cycle: a -> b -> a"),
    "missing key": ("steps:\n  a: {rag: docs}\n", r"chain bad, step 'a', key 'query': missing: a rag step needs 'query:'"),
    "unknown key": ("steps:\n  a: {rag: docs, query: x, top_k: 3}\n",
                    r"chain bad, step 'a', key 'top_k': unknown key for a rag step; valid: "),
    "bad value": ("steps:\n  a: {rag: docs, query: x, k: many}\n",
                  r"chain bad, step 'a', key 'k': must be a positive integer, got 'many'"),
    "bare name": ("steps:\n  a: {generate: \"{{ question }}\"}\n",
                  r"chain bad, step 'a', key 'generate': unknown name 'question' in the template; "
                  r"write \{\{ inputs.question \}\}"),
    "bad params": ("steps:\n  a: {generate: hi, params: {max_tokenz: 3}}\n",
                   r"chain bad, step 'a', key 'params': unknown generation parameter\(s\) max_tokenz"),
    "duplicate step": ("steps:\n  a: {generate: \"first\"}\n  a: {generate: \"second\"}\n",
                       r"chain bad, step 'a': defined twice \(lines 2 and 3\); keep one"),
    "duplicate key": ("steps:\n  a:\n    generate: first\n    generate: second\n",
                      r"chain bad, step 'a', key 'generate': defined twice \(lines 3 and 4\)"),
    "duplicate flow key": ("steps:\n  a: {generate: first, generate: second}\n",
                           r"chain bad, step 'a': key 'generate' is defined twice \(lines 2 and 2\)"),
    "duplicate top key": ("model: default\nsteps:\n  a: {generate: hi}\nmodel: other\n",
                          r"chain bad, key 'model': defined twice \(lines 1 and 4\)"),
    "undeclared input": ("inputs: [q]\nsteps:\n  a: {generate: \"{{ inputs.x }}\"}\n",
                         r"chain bad, step 'a': reads inputs.x, which the chain does not declare; its inputs: q"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_specs_are_one_line_and_save_nothing(workspace, case: str) -> None:
    text, message = BAD[case]
    with pytest.raises(InvalidInputError, match=message) as err:
        chains.save("bad", text)
    assert "\n" not in str(err.value)
    assert workspace.names("chain") == [] and not (workspace.artifacts / "chain").exists()


def test_python_step_that_raises_stops_the_chain_and_keeps_the_traceback(workspace) -> None:
    def explode(t: str) -> str:
        raise ValueError(f"cannot handle {t}")

    chains.save("text", TEXT_CHAIN)
    with pytest.raises(chains.ChainStepError) as err:
        chains.run("text", {"text": "a b"}, resolver=resolver(up=explode))
    msg = str(err.value)
    assert msg.startswith("chain text@1 stopped at step 'upper' (map): ValueError: cannot handle a;")
    assert "\n" not in msg and isinstance(err.value.__cause__, ValueError)
    partial = err.value.run
    assert partial.status == "error" and partial.stopped_at == "upper"
    assert [x.name for x in partial.results] == ["words", "upper"]  # count and never did not run
    spans = {s.name: s for s in cellops.traces.get(partial.trace_id).spans}
    assert spans["upper"].status == "error" and spans["chain text@1"].status == "error"
    stack = next(e for e in spans["upper[0]"].events if e["name"] == "exception")["attributes"]
    assert "ValueError: cannot handle a" in stack["exception.stacktrace"]
    assert "in explode" in stack["exception.stacktrace"]
    run = workspace.get_run(partial.run_id)
    assert run["status"] == "error" and run["record"]["stopped_at"] == "upper"


PII_REDACT = "input:\n  - check: pii\n    action: redact\n"
PII_BLOCK = "input:\n  - check: pii\n    action: block\n"


@pytest.mark.slow  # the first policy load imports presidio (cached for the rest of the session)
def test_guard_step_redacts_or_blocks(workspace) -> None:
    guard.save("pii_redact", PII_REDACT)
    guard.save("pii_block", PII_BLOCK)
    spec = {"steps": {
        "clean": {"guard": "pii_redact", "input": "{{ inputs.text }}"},
        "strict": {"guard": "pii_block", "input": "{{ inputs.text }}"},
        "after": {"python": "up", "args": {"t": "{{ steps.clean.output }}"}},
    }}
    chains.save("g", spec)
    r = chains.run("g", {"text": "mail me at ada@example.com"}, resolver=resolver())
    assert r.status == "blocked" and r.stopped_at == "strict" and "after" not in r.steps
    assert r.steps["clean"] == "mail me at <EMAIL_ADDRESS_1>"
    assert r.output.startswith("[blocked by guard policy pii_block@1 (input)")
    spans = {s.name: s for s in cellops.traces.get(r.trace_id).spans}
    assert spans["clean"].kind == "guard" and spans["strict"].status == "error"
    verdict = next(e for e in spans["strict"].events if e["name"] == "guard.verdict")["attributes"]
    assert verdict["allowed"] is False and verdict["checks"] == ["pii"]
    assert workspace.get_run(r.run_id)["status"] == "blocked"

    chains.save("g", {"steps": {**spec["steps"], "strict": {**spec["steps"]["strict"], "action": "redact"}}})
    r2 = chains.run("g", {"text": "mail me at ada@example.com"}, resolver=resolver())
    assert r2.status == "ok" and r2.output == "MAIL ME AT <EMAIL_ADDRESS_1>"
    assert r2.steps["strict"].startswith("[blocked by guard policy pii_block@1")


@pytest.mark.slow  # builds a two-document index with the embedded embedder
def test_rag_retrieve_step_feeds_python(workspace) -> None:
    docs = [{"id": "hours", "text": "The museum opens at 9 am every day except Monday."},
            {"id": "cafe", "text": "The cafe on the roof serves tea and cake."}]
    rag.build("museum", {"docs": docs}, progress=False)
    chains.save("find", {"steps": {
        "hits": {"rag": "museum", "query": "{{ inputs.q }}", "k": 1},
        "ids": {"python": "ids", "args": {"hits": "{{ steps.hits.output }}"}},
    }})
    r = chains.run("find", {"q": "When does the museum open?"},
                   resolver=resolver(ids=lambda hits: [h["doc_id"] for h in hits]))
    assert r.output == ["hours"] and r.steps["hits"][0]["text"].startswith("The museum opens")
    span = next(s for s in cellops.traces.get(r.trace_id).spans if s.name == "hits")
    assert span.kind == "retriever" and span.attrs["cellops.index"] == "museum@1"
    ev = next(e for e in span.events if e["name"] == "retrieved")["attributes"]
    assert len(ev["chunks"]) == 1 and len(ev["scores"]) == 1


TESTED = TEXT_CHAIN + """
tests:
  - vars: {text: "x y"}
    assert:
      - {type: equals, value: "X-Y"}
      - {type: equals, value: 2, step: count}
      - {type: contains, value: "[\\"x\\"", step: words}
  - vars: {text: "z"}
    assert:
      - {type: equals, value: "Z"}
      - {type: equals, value: "1", step: count}
"""


def test_assertions_target_steps(workspace) -> None:
    chains.save("tt", TESTED)
    report = chains.test("tt", resolver=resolver())
    rows = [(r["case"], r["assertion"], r["passed"]) for r in report.results]
    assert rows == [(1, "equals 'X-Y'", True), (1, "equals 2", True), (1, "contains '[\"x\"'", True),
                    (2, "equals 'Z'", True), (2, "equals '1'", False)]  # count was skipped: null
    assert report.failures[0]["reason"].startswith("step count: output is 'null'")
    line = report.failure_line()
    assert line.startswith("chain tt@1 failed 1 of 5 assertions") and "%chain test tt@1" in line
    assert workspace.get_run(report.run_id)["status"] == "failed"
    with pytest.raises(chains.ChainTestFailed):
        chains.test("tt", resolver=resolver(), raise_on_failure=True)
    bad = [{"vars": {"text": "a"}, "assert": [{"type": "equals", "value": "A", "step": "nope"}]}]
    with pytest.raises(InvalidInputError, match=r"assertion 1: step 'nope' is not a step of tt@1; its steps: "
                                                r"words, upper, count, never"):
        chains.test("tt", bad, resolver=resolver())


def test_compare_grid_two_chain_versions(workspace) -> None:
    chains.save("text", TEXT_CHAIN)
    chains.save("text", TEXT_CHAIN.replace("join(inputs.sep)", "join(' ')"))
    cases = [{"vars": {"text": "a b"}, "assert": [{"type": "equals", "value": "A-B"}]},
             {"vars": {"text": "c"}, "assert": [{"type": "equals", "value": "C"}]}]
    grid = chains.compare_grid(["text@1", "text@2"], on=cases, resolver=resolver())
    assert [c.label for c in grid.columns] == ["text@1 · default", "text@2 · default"]
    assert [[c.output for c in row] for row in grid.cells] == [["A-B", "A B"], ["C", "C"]]
    assert [[c.passed for c in row] for row in grid.cells] == [[True, False], [True, True]]
    df = grid.to_frame()
    assert list(df["text@2 · default"]) == ["A B", "C"]
    rec = workspace.get_run(grid.run_id)
    assert rec["kind"] == "chain_compare" and [c["prompt"] for c in rec["record"]["columns"]] == ["text@1", "text@2"]
    spans = cellops.traces.get(grid.trace_id).spans
    cells = [s for s in spans if s.parent_id == spans[0].span_id]
    assert [s.name for s in cells] == ["chain text@1", "chain text@2", "chain text@1", "chain text@2"]  # a chain span per cell
    assert all(s.kind == "chain" for s in cells)
    with pytest.raises(InvalidInputError, match=r"case 1 \(item 0 of the list\) has no value for input 'text' of text@1"):
        chains.compare_grid(["text@1"], on=[{"vars": {"txt": "a"}}], resolver=resolver())


def test_errors_are_cellops_errors() -> None:
    assert issubclass(chains.ChainStepError, CellopsError) and issubclass(chains.ChainTestFailed, CellopsError)


def test_chain_as_a_pipeline_step(workspace, tmp_path) -> None:
    from cellops.kernels_lib.pipelines.chain import load_chain, run_chain

    chains.save("base", {"steps": {"b": {"python": "os.path:basename", "args": {"p": "{{ inputs.path }}"}}}})
    chains.save("ext", {"steps": {"e": {"python": "os.path:splitext", "args": {"p": "{{ inputs.name }}"}}},
                        "output": "{{ steps.e.output[1] }}"})
    pipe = tmp_path / "pipe.yaml"
    pipe.write_text("params: {path: /data/report.csv}\nsteps:\n"
                    "  ext: {chain: ext@1, inputs: {name: '${base.output}'}}\n"
                    "  base: {chain: base, inputs: {path: '${params.path}'}}\n")
    assert list(load_chain(pipe).steps) == ["base", "ext"]  # order from the references
    run = run_chain(pipe)
    assert run.status == "ok", run.record
    steps = run.record["steps"]
    assert steps["base"]["values"]["output"] == "report.csv" and steps["ext"]["values"]["output"] == ".csv"
    chain_run = workspace.get_run(steps["ext"]["run_id"])
    assert chain_run["kind"] == "chain" and chain_run["record"]["source"] == "pipeline"
    assert chain_run["record"]["trace_id"] == steps["ext"]["trace_id"]
    st = cellops.traces.get(run.record["trace_id"])  # the chains' traces joined the pipeline's
    assert st.trace_id == steps["ext"]["trace_id"] and [s.name for s in st.children(st.root)] == ["base", "ext"]
    assert [s.name for s in st.children(st.children(st.root)[1])] == ["chain ext@1"]
    pipe.write_text("steps:\n  a: {chain: nope}\n")
    with pytest.raises(NotFoundError, match=r"pipe.yaml: step 'a': no chain named 'nope'; available: base, ext"):
        load_chain(pipe)


def test_yamlsafe_rejects_duplicate_keys_at_any_level_but_allows_merge_overrides() -> None:
    import yaml

    from cellops.kernels_lib.yamlsafe import DuplicateKeyError, safe_load

    assert safe_load("a: 1\nb: {c: 2}\n") == {"a": 1, "b": {"c": 2}}
    assert safe_load("base: &b {x: 1, y: 2}\nitem:\n  <<: *b\n  y: 3\n")["item"] == {"x": 1, "y": 3}
    for text, key, lines in [("a: 1\na: 2\n", "a", (1, 2)), ("- {x: 1, x: 2}\n", "x", (1, 1)),
                             ("top:\n  deep:\n    k: 1\n    k: 2\n", "k", (3, 4)),
                             ("yes: 1\ntrue: 2\n", True, (1, 2))]:  # YAML 1.1: both are True
        with pytest.raises(DuplicateKeyError) as err:
            safe_load(text)
        assert (err.value.key, err.value.first_line, err.value.line) == (key, *lines)
        assert isinstance(err.value, yaml.YAMLError)  # callers' YAMLError handling still applies
    with pytest.raises(yaml.constructor.ConstructorError):  # still safe: no Python objects
        safe_load("!!python/object/apply:os.system ['true']\n")
