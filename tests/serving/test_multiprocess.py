"""Two `cellops serve` processes on one machine writing to one workspace and exporting their
traces over OTLP to one Arize Phoenix (as several hosts behind a load balancer would)."""

from __future__ import annotations

import concurrent.futures as cf
import sys
from pathlib import Path

import httpx
import pytest
from serve_proc import make_workspace, start_server, stop_server

from cellops.kernels_lib.serving import ab, records

pytestmark = pytest.mark.slow


def test_two_servers_one_workspace_one_phoenix(tmp_path, phoenix: str) -> None:
    home = make_workspace(tmp_path)
    args = ["helper@1", "--b", "helper@2", "--name", "helper", "--guard", "off"]
    otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": phoenix}
    one = start_server(home, args, tmp_path / "one.log", env=otlp | {"OTEL_SERVICE_NAME": "cellops-one"})
    two = start_server(home, args, tmp_path / "two.log", env=otlp | {"OTEL_SERVICE_NAME": "cellops-two"})
    try:
        def ask(i: int) -> tuple[str, dict]:
            s = (one, two)[i % 2]  # round robin, as a load balancer would
            r = httpx.post(f"{s.v1}/chat/completions", headers=s.headers(), timeout=120, json={
                "model": "helper", "user": f"lb{i % 5}", "max_tokens": 2,
                "messages": [{"role": "user", "content": "Hello"}]})
            assert r.status_code == 200, r.text
            return f"lb{i % 5}", r.json()

        with cf.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(ask, range(12)))
    finally:
        stop_server(one.proc)
        stop_server(two.proc)
    rows = {r["id"]: r for r in records.rows(one.ws(), "helper")}
    assert sorted(rows) == sorted(body["id"] for _, body in answers)  # all 12, each once
    assert {r["pid"] for r in rows.values()} == {one.proc.pid, two.proc.pid}
    for user, body in answers:  # the same user gets the same variant on either host
        assert body["cellops"]["variant"] == ab.assign("helper", user, 0.5) == rows[body["id"]]["variant"]
    from cellops.kernels_lib.tracking import traces

    t = traces.get(rows[answers[0][1]["id"]]["trace_id"], one.ws())
    names = [s.name for s in t.spans]
    assert names[0] == "serve helper" and any(n.startswith("prompt ") for n in names)
    # each server exported its requests' traces to the one collector (flushed when it stopped)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "magics"))
    from test_trace_phoenix import phoenix_spans  # the traces tests' Phoenix REST reader

    for pid in (one.proc.pid, two.proc.pid):
        row = next(r for r in rows.values() if r["pid"] == pid)
        stored = traces.get(row["trace_id"], one.ws())
        theirs = phoenix_spans(phoenix, row["trace_id"], len(stored.spans))
        assert {s["name"] for s in theirs} == {s.name for s in stored.spans}
        root = next(s for s in theirs if s["name"] == "serve helper")
        assert root["attributes"]["cellops.response_id"] == row["id"] and root["parent_id"] is None
