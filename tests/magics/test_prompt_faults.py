"""A failing %%prompt cell leaves no new version; a corrupt stored guard policy is one line in
%%prompt, %guard status and `cellops guard list|show|check`."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError
from testsupport import free_port

from cellops.cli import main as cli_main
from cellops.kernels_lib import guard


@pytest.mark.parametrize(("line", "body", "problem"), [
    ("p --model nosuch:thing", "Hello", "unknown model URI 'nosuch:thing'"),
    ("p --model openai:http://127.0.0.1:{port}/v1#m", "Hello", "down or unreachable"),
    ("p -p who", "Hello {{ who }}", "malformed -p 'who'"),
    ("p --max-tokens -5", "Hello", "max_tokens must be >= 1"),
    ("p", "Hello {{ who_is_undefined }}", "undefined variable 'who_is_undefined' in p@2"),
    ("p", "Hello {{ 1/0 }}", "p@2 failed to render: ZeroDivisionError"),
])
def test_failing_cell_saves_no_version(ip, workspace, line: str, body: str, problem: str) -> None:
    ip.run_cell_magic("prompt", "p --no-run", "Hi")  # p@1 exists; a failing edit must not make p@2
    with pytest.raises(UsageError, match=problem.replace("(", r"\(").replace("?", r"\?")):
        ip.run_cell_magic("prompt", line.format(port=free_port()), body)
    assert [v.version for v in workspace.list_versions("prompt", "p")] == [1]
    assert workspace.list_runs("prompt") == []


def test_a_cell_that_works_saves_then_records(ip, workspace) -> None:
    with pytest.raises(UsageError, match="undefined variable 't_w' in ok@1"):
        ip.run_cell_magic("prompt", "ok --max-tokens 2 -o t_r", "Say {{ t_w }}.\n")
    assert workspace.list_versions("prompt", "ok") == []
    ip.user_ns["t_w"] = "hi"
    ip.run_cell_magic("prompt", "ok --max-tokens 2 -o t_r", "Say {{ t_w }}.\n")
    r = ip.user_ns["t_r"]
    assert r.version == "ok@1" and workspace.get_run(r.run_id)["record"]["prompt"] == "ok@1"
    assert r.trace and workspace.resolve("prompt", "ok").content["params"] == {"max_tokens": 2}


@pytest.mark.parametrize(("line", "body", "problem"), [
    ("p --model llamacpp:/nonexistent.gguf", "Hello", "GGUF file not found: /nonexistent.gguf"),
    ("p", "{{ range(10**12) | list }}", "p@1 failed to render: OverflowError"),
])
def test_a_failed_cell_leaves_a_searchable_error_trace(ip, workspace, line: str, body: str, problem: str) -> None:
    from cellops.kernels_lib.tracking import traces

    with pytest.raises(UsageError, match=problem):
        ip.run_cell_magic("prompt", line, body)
    (found,) = traces.search(status="error", workspace=workspace)
    assert found.name == "prompt p@1" and found.kind == "chain"
    root = traces.get(found.trace_id, workspace).root
    assert root.status == "error" and problem.split(":")[0] in root.attrs["error"]
    assert [e["name"] for e in root.events] == ["exception"]
    listed = ip.run_line_magic("trace", "list --status error")._repr_mimebundle_()["text/plain"]
    assert found.trace_id[:12] in listed and "prompt p@1" in listed
    assert workspace.list_versions("prompt", "p") == []  # the failure still saves no version


def test_run_of_a_saved_prompt_that_fails_leaves_an_error_trace(ip, workspace) -> None:
    from cellops.kernels_lib.tracking import traces

    ip.run_cell_magic("prompt", "q --no-run", "Hello")
    with pytest.raises(UsageError, match="GGUF file not found"):
        ip.run_line_magic("prompt", "run q --model llamacpp:/nonexistent.gguf")
    assert [t.name for t in traces.search(status="error", workspace=workspace)] == ["prompt q@1"]


def test_history_of_an_unknown_prompt_says_so(ip) -> None:
    ip.run_cell_magic("prompt", "q --no-run", "Hello")
    with pytest.raises(UsageError, match=r"^no saved prompt named 'nosuch'; %prompt list shows"):
        ip.run_line_magic("prompt", "history nosuch")


def _corrupt_active_policy(workspace) -> None:
    guard.save("mine", "extends: default\ndescription: mine", workspace)
    guard.on("mine", workspace)
    with workspace.db(write=True) as conn:
        conn.execute("UPDATE versions SET content='{\"yaml\": \"extends' WHERE kind='guard' AND name='mine'")


def test_corrupt_guard_policy_is_one_line_everywhere(ip, workspace, capsys) -> None:
    _corrupt_active_policy(workspace)
    for run in (lambda: ip.run_cell_magic("prompt", "g --max-tokens 2", "Hello"),
                lambda: ip.run_line_magic("guard", "status")):
        with pytest.raises(UsageError, match=r"guard policy mine@1 is corrupt .*%guard off"):
            run()
    assert workspace.list_versions("prompt", "g") == []
    for argv in (["guard", "list"], ["guard", "show", "mine"], ["guard", "check", "hello"]):
        capsys.readouterr()
        assert cli_main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(r"guard (policy )?mine@1 is corrupt", err[0]), err
