"""%%prompt and %prompt through a real InteractiveShell on the embedded model."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib import prompts


def test_cell_saves_runs_and_records(ip, workspace, capsys) -> None:
    ip.user_ns["t_topic"] = "the sea"
    ip.run_cell_magic("prompt", "haiku --max-tokens 24 -o t_r", "Write one line about {{ t_topic }}.")
    r = ip.user_ns["t_r"]
    assert r.text and r.version == "haiku@1"
    assert r.text in capsys.readouterr().out  # streamed to the cell
    run = workspace.get_run(r.run_id)
    rec = run["record"]
    assert rec["prompt"] == "haiku@1" and rec["model"] == "default"
    assert "the sea" in rec["messages"][-1]["content"] and rec["output"] == r.text
    assert rec["completion_tokens"] > 0 and rec["weights_hash"]
    assert [s["name"] for s in rec["trace"]] == ["render", "load_model", "generate"]
    bundle = r._repr_mimebundle_()
    assert "text/html" in bundle and "haiku@1" in bundle["text/plain"]


def test_params_and_namespace(ip) -> None:
    ip.user_ns["t_x"] = "cats"
    ip.run_cell_magic("prompt", "p1 --no-run -o t_p", "About {{ t_x }} and {{ y }}")
    assert ip.user_ns["t_p"].ref == "p1@1"
    ip.run_cell_magic("prompt", "p1 -p y=dogs --max-tokens 4 -o t_r", "About {{ t_x }} and {{ y }}")
    assert ip.user_ns["t_r"].version == "p1@2"  # max-tokens is part of the content
    assert "About cats and dogs" in ip.user_ns["t_r"].messages[-1]["content"]


def test_same_content_same_version(ip) -> None:
    for _ in range(2):
        ip.run_cell_magic("prompt", "same --no-run", "Hello")
    assert [p.version for p in prompts.history("same")] == [1]


def test_line_commands(ip, capsys) -> None:
    ip.run_cell_magic("prompt", "q --no-run", "one {{ a }}")
    ip.run_cell_magic("prompt", "q --no-run --system sys", "two {{ a }}")
    out = ip.run_line_magic("prompt", "list")
    assert "q@2" in out._repr_mimebundle_()["text/plain"]
    hist = ip.run_line_magic("prompt", "history q")._repr_mimebundle_()["text/plain"]
    assert "q@1" in hist and "q@2" in hist
    assert "+two {{ a }}" in repr(ip.run_line_magic("prompt", "diff q@1 q@2"))
    assert "system: sys" in repr(ip.run_line_magic("prompt", "show q"))
    ip.run_line_magic("prompt", "run q@1 -p a=x -o t_run")
    assert ip.user_ns["t_run"].version == "q@1"


@pytest.mark.parametrize(
    "line, body, message",
    [
        ("x --model nosuch:thing", "hi", "unknown model URI 'nosuch:thing'"),
        ("x", "{% if %}", "syntax error on line 1"),
        ("x", "hi {{ t_undefined_var }}", "undefined variable 't_undefined_var'"),
        ("x -p novalue", "hi", "malformed -p 'novalue'"),
        ("x --model llamacpp:/nope/missing.gguf", "hi", "GGUF file not found"),
        ("x --model openai:http://127.0.0.1:9/v1#m", "hi", "down or unreachable"),
        ("x --temperature hot", "hi", "invalid float value"),
        ("", "hi", "the following arguments are required: name"),
    ],
)
def test_bad_input_is_one_clear_line(ip, line: str, body: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_cell_magic("prompt", line, body)


def test_unknown_line_command(ip) -> None:
    with pytest.raises(UsageError, match="unknown %prompt command 'frob'"):
        ip.run_line_magic("prompt", "frob")
    with pytest.raises(UsageError, match="no prompt named 'ghost'"):
        ip.run_line_magic("prompt", "show ghost")


def test_help_is_attached(ip) -> None:
    doc = ip.find_cell_magic("prompt").__doc__
    assert "Jinja2" in doc and "--max-tokens" in doc


def test_live_kernel_waterfall_fills_in_while_the_call_runs(ip, workspace, live_views) -> None:
    """In a live kernel a %%prompt cell shows the ipywidgets waterfall growing span by span while
    the model runs, then closes it: the result carries the same waterfall as static HTML."""
    ip.run_cell_magic("prompt", "livewf -p who=Ada --max-tokens 8 -o t_r", "Say hi to {{ who }}.")
    r, running = ip.user_ns["t_r"], live_views.running()
    assert len(live_views.views) == 1
    root = f"prompt {r.version}"
    full = [root, "render", "load_model", "generate"]
    assert [root] in running and [root, "render"] in running, live_views.states
    assert full in running, live_views.states  # shown while the tokens came
    assert running.index([root, "render"]) < running.index(full)
    assert live_views.states[-1] == (full, False)  # the root's end drew last
    assert live_views.views[0].widget.comm is None  # closed: the static waterfall takes over
    assert live_views.displayed(live_views.ids[0])
    assert "wf-name" in r._repr_mimebundle_()["text/html"]


def test_cell_parses_into_a_frozen_dataclass_without_running(ip) -> None:
    import dataclasses

    from cellops.magics.context import MagicContext
    from cellops.magics.prompt import CellArgs, parse_cell

    ip.user_ns["t_country"], ip.user_ns["t_tone"] = "Peru", "dry"
    ctx = MagicContext(ip, ip.magics_manager.registry["Cellops"])
    a = parse_cell(ctx, "cap --max-tokens 4 -p t_tone=warm --no-run",
                   "Capital of {{ t_country }}, {{ t_tone }}?\n---\n- vars: {t_country: Chile}\n")
    assert isinstance(a, CellArgs) and not a.run and a.cache
    assert a.variables == {"t_country": "Peru", "t_tone": "warm"}  # -p wins over the notebook
    assert a.params == {"max_tokens": 4} and a.tests == [{"vars": {"t_country": "Chile"}, "assert": []}]
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "other"  # type: ignore[misc]


def test_inline_cases_with_a_key_given_twice_are_one_line_and_save_nothing(ip, workspace) -> None:
    body = ("Say {{ w }}\n---\n- vars: {w: hi}\n  assert: [{type: contains, value: hi}]\n"
            "  assert: [{type: contains, value: bye}]\n")
    with pytest.raises(UsageError, match=r"^test cases after '---' are not valid YAML: key 'assert' is "
                                         r"defined twice \(lines 2 and 3\); keep one$"):
        ip.run_cell_magic("prompt", "dupcase --no-run", body)
    assert workspace.list_versions("prompt", "dupcase") == []
