"""Monitoring end to end: real traffic through the real app (in-process ASGI, real model and
embedder), then the dashboard, drift and A/B tests, and alert rules through the real CLI."""

from __future__ import annotations

import json

import pytest
from serve_proc import SHORT

from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.monitoring import alerts, stats
from cellops.kernels_lib.serving import ab

pytestmark = pytest.mark.slow

COOKING = ["How long should I boil an egg?", "What is the best flour for bread?", "How do I caramelize onions?",
           "Can I freeze fresh pasta?", "How much salt goes in pasta water?", "Why did my cake sink?",
           "How do I sear a steak?", "What oil is best for frying?", "How do I make a roux?",
           "Should I rinse rice before cooking?", "How do I poach an egg?", "What is blanching vegetables?",
           "How long do I roast potatoes?", "How do I keep basil fresh?", "Why knead bread dough?",
           "How do I thicken a soup?"]
CODE = ["How do I reverse a list in Python?", "What is a segmentation fault?", "How do I undo a git commit?",
        "What does a Rust borrow checker do?", "How do I read a CSV file in pandas?", "What is a race condition?",
        "How do I write a SQL join?", "What is a Python decorator?"]
RULES = """reference: 8
window: 8
rules:
  - name: inputs drifted
    metric: drift.input.p_value
    op: "<"
    value: 0.01
"""


def _users_per_variant(n: int) -> list[str]:
    """n users assigned to A and n to B (sticky hash), interleaved."""
    a = [u for u in (f"cook{i}" for i in range(200)) if ab.assign("steady", u, 0.5) == "a"][:n]
    b = [u for u in (f"cook{i}" for i in range(200)) if ab.assign("steady", u, 0.5) == "b"][:n]
    return [x for pair in zip(a, b, strict=True) for x in pair]


def _client(workspace, name: str, **kw):  # noqa: ANN202
    from starlette.testclient import TestClient

    from cellops.kernels_lib.serving import ServeConfig, auth, create_app

    app = create_app(ServeConfig("helper@1", name=name, guard="off", workspace=str(workspace.root), **kw))
    token, _ = auth.load_token(workspace, name, None)
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {token}"
    return c


def _ask(c, name: str, question: str, user: str) -> dict:
    r = c.post("/v1/chat/completions", json={"model": name, "user": user, "max_tokens": 4,
                                              "messages": [{"role": "user", "content": question}]})
    assert r.status_code == 200, r.text
    return r.json()


def _check(tmp_path, name: str, capsys) -> tuple[int, bool, str]:
    """`cellops monitor check` (the CLI's own main, in this process: the embedder loads once)."""
    from cellops.cli import main

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    flag = tmp_path / f"alert-{name}"
    code = main(["monitor", "check", name, "--rules", str(rules), "--on-alert", f"echo \"$CELLOPS_ALERTS\" > {flag}"])
    return code, flag.exists(), capsys.readouterr().out


def test_drift_alert_fires_when_the_topic_switches_and_not_otherwise(workspace, tmp_path, capsys) -> None:
    from cellops.kernels_lib import prompts

    prompts.save("helper", SHORT, params={"max_tokens": 4}, workspace=workspace)
    prompts.save("helper", "Reply briefly: {{ question }}", params={"max_tokens": 4}, workspace=workspace)
    with _client(workspace, "drifting") as c:
        for i, q in enumerate(COOKING[:8] + CODE):
            _ask(c, "drifting", q, f"user{i}")
    with _client(workspace, "steady", b="helper@2") as c:
        users = _users_per_variant(8)
        answers = [(_ask(c, "steady", q, u), u) for q, u in zip(COOKING, users, strict=True)]
        for body, _u in answers:  # A's answers are liked, B's are not
            rating = "up" if body["cellops"]["variant"] == "a" else "down"
            assert c.post("/v1/feedback", json={"response_id": body["id"], "rating": rating}).status_code == 200

    code, fired, out = _check(tmp_path, "drifting", capsys)
    assert code == 1 and fired, out
    assert json.loads((tmp_path / "alert-drifting").read_text())[0]["rule"] == "inputs drifted"
    code, fired, out = _check(tmp_path, "steady", capsys)
    assert code == 0 and not fired, out

    _scheduled_checks(tmp_path, workspace)

    from cellops.kernels_lib import monitoring

    d = monitoring.figures("drifting", reference=8, workspace=workspace)
    assert d["requests"] == 16 and d["drift"]["input"]["p_value"] < 0.01 and d["drift"]["input"]["drifted"]
    assert d["overall"]["latency_p50_s"] > 0 and d["overall"]["completion_tokens"] <= 16 * 4
    assert d["ab"] is None and d["drift"]["output_length"]["enough"]
    s = monitoring.figures("steady", reference=8, workspace=workspace)
    assert s["drift"]["input"]["p_value"] >= 0.01
    assert {v: s["variants"][v]["requests"] for v in "ab"} == {"a": 8, "b": 8}
    assert s["variants"]["a"]["feedback"]["up"] == 8 and s["variants"]["b"]["feedback"]["down"] == 8
    assert s["ab"]["verdict"].startswith("not enough data")  # 8 ratings each: below the minimum of 10
    # a dataset version as the reference window: its inputs vs the last 8 requests
    from cellops.kernels_lib import datasets

    datasets.save("cooking", {"train": [{"question": q} for q in COOKING[:8]],
                              "test": [{"question": q} for q in CODE]},
                  workspace=workspace)
    dd = monitoring.figures("drifting", reference="cooking@1:train", window=8, workspace=workspace)
    assert dd["drift"]["reference_window"].startswith("dataset cooking@1") and dd["drift"]["reference"] == 8
    assert dd["drift"]["input"]["p_value"] < 0.01 and not dd["drift"]["output_length"]["enough"]
    sd = monitoring.figures("steady", reference="cooking@1:train", window=8, workspace=workspace)
    assert sd["drift"]["input"]["p_value"] >= 0.01 and sd["drift"]["current"] == 8
    assert monitoring.figures("drifting", reference="cooking@1:test", window=8,
                              workspace=workspace)["drift"]["input"]["p_value"] >= 0.01  # code vs code
    with pytest.raises(InvalidInputError, match="dataset version"):
        monitoring.parse_reference("cooking")
    board = monitoring.monitor("steady", reference=8, workspace=workspace)._repr_mimebundle_()
    assert "A/B: not enough data" in board["text/plain"] and "<img" in board["text/html"]

    from cellops.cli import main

    capsys.readouterr()  # what the schedule and dataset steps printed
    assert main(["monitor", "steady", "--json", "--reference", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 16
    assert main(["monitor", "drifting", "--json", "--reference", "cooking@1:train", "--window", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["drift"]["input"]["drifted"]


def test_ab_verdict_needs_data_and_names_the_better_variant() -> None:
    few = stats.ab_compare({"a": 3, "b": 1}, {"a": 1, "b": 3}, {"a": [0.1] * 4, "b": [0.2] * 4})
    assert few["winner"] is None and few["verdict"].startswith("not enough data")
    clear = stats.ab_compare({"a": 18, "b": 5}, {"a": 2, "b": 15}, {"a": [0.1 + i / 100 for i in range(20)],
                                                                  "b": [0.3 + i / 100 for i in range(20)]})
    assert clear["winner"] == "a" and clear["verdict"].startswith("a is better")
    assert clear["latency"]["faster"] == "a" and clear["latency"]["p_value"] < 0.05
    same = stats.ab_compare({"a": 10, "b": 10}, {"a": 10, "b": 10}, {})
    assert same["winner"] is None and same["verdict"].startswith("no significant difference")


def test_rules_are_validated_with_one_clear_line() -> None:
    from cellops.kernels_lib.errors import InvalidInputError

    for bad, msg in (("rules: []", "needs a 'rules:' list"), ("rules: [{metric: x, op: '~', value: 1}]", "is not one of"),
                     ("rules: [{metric: x}]", "needs metric, op and value"), (": :", "not valid YAML")):
        with pytest.raises(InvalidInputError, match=msg):
            alerts.parse_rules(bad)
    r = alerts.parse_rules(RULES)
    assert r.reference == 8 and r.rules[0].op == "<"
    assert alerts.lookup({"a": {"b": 2}}, "a.b") == 2 and alerts.lookup({"a": {}}, "a.b") is None


def _scheduled_checks(tmp_path, workspace) -> None:
    """The check as a scheduled step: `cellops schedule add` of a notebook that runs `cellops monitor
    check`, fired once by the real scheduler; the drifting app's run fails (exit 1 recorded, the
    schedule's --on-failure hook runs), the steady app's run passes."""
    import threading
    import time
    from datetime import datetime

    import nbformat

    from cellops.cli import main
    from cellops.kernels_lib.pipelines import schedules
    from cellops.kernels_lib.pipelines.scheduler import serve

    for app in ("drifting", "steady"):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                               "display_name": "Python 3"}})
        nb.cells = [nbformat.v4.new_code_cell(
            "import cellops\nfrom cellops.cli import main\n"
            f"code = main(['monitor', 'check', {app!r}, '--rules', {str(tmp_path / 'rules.yaml')!r}])\n"
            f"cellops.pipelines.record(exit_code=code)\nassert code == 0, f'monitor check {app}: exit {{code}}'")]
        nbformat.write(nb, str(tmp_path / f"check_{app}.ipynb"))
        assert main(["schedule", "add", str(tmp_path / f"check_{app}.ipynb"), "--every", "3600", "--name", app,
                     "--on-failure", f"echo \"$CELLOPS_RUN_ERROR\" > {tmp_path / ('hook-' + app)}"]) == 0
        schedules.set_next_run(app, datetime.now().astimezone())  # the first firing now, not in an hour
    stop = threading.Event()
    thread = threading.Thread(target=serve, kwargs={"workspace": workspace, "poll": 0.5, "stop": stop}, daemon=True)
    thread.start()
    try:  # bounded: one firing each (every hour), then the scheduler stops
        end = time.monotonic() + 400
        while not {("drifting", "failed"), ("steady", "ok")} <= {(e["schedule"], e["event"]) for e in schedules.events()}:
            assert time.monotonic() < end, schedules.events()
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    [failed] = [e for e in schedules.events("drifting") if e["event"] == "failed"]
    run = workspace.get_run(failed["run_id"])
    assert run["status"] == "failed" and run["record"]["values"] == {"exit_code": 1}
    assert "exit 1" in (tmp_path / "hook-drifting").read_text()
    [ok] = [e for e in schedules.events("steady") if e["event"] == "ok"]
    assert workspace.get_run(ok["run_id"])["record"]["values"] == {"exit_code": 0}
    assert not (tmp_path / "hook-steady").exists()
