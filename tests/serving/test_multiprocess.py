"""Two `cellops serve` processes on one machine writing to one workspace (as behind a load balancer)."""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import pytest
from serve_proc import make_workspace, start_server, stop_server

from cellops.kernels_lib.serving import ab, records

pytestmark = pytest.mark.slow


def test_two_servers_one_workspace(tmp_path) -> None:
    home = make_workspace(tmp_path)
    args = ["helper@1", "--b", "helper@2", "--name", "helper", "--guard", "off"]
    one = start_server(home, args, tmp_path / "one.log")
    two = start_server(home, args, tmp_path / "two.log")
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
