"""Reliability: concurrent load (every request answered or refused with 429, each answer recorded
exactly once) and a server SIGKILLed mid-load (the workspace opens cleanly, nothing recorded is
lost after a restart). max_tokens is tiny: this is about the plumbing, not the model."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sqlite3
import threading

import httpx
import pytest
from serve_proc import make_workspace, start_server, stop_server

from cellops.kernels_lib.serving import records

pytestmark = pytest.mark.slow
BODY = {"max_tokens": 2, "messages": [{"role": "user", "content": "Say hi."}]}


def _client_loop(base: str, headers: dict, app: str, user: str, n: int,
                 stop: threading.Event | None = None) -> list[tuple[int, str | None]]:
    out = []
    with httpx.Client(timeout=300) as c:
        for _ in range(n):
            if stop is not None and stop.is_set():
                break
            try:
                r = c.post(f"{base}/v1/chat/completions", headers=headers, json=BODY | {"model": app, "user": user})
            except httpx.HTTPError:
                out.append((-1, None))  # the server went away mid-request
                continue
            out.append((r.status_code, r.json().get("id") if r.status_code == 200 else None))
            if r.status_code == 429:
                assert r.json()["error"]["type"] == "rate_limit_error"
    return out


def test_32_clients_x_20_requests_all_answered_or_429_and_recorded_once(served) -> None:
    before = {r["id"] for r in records.rows(served.ws(), "helper")}
    with cf.ThreadPoolExecutor(32) as pool:
        results = [x for f in [pool.submit(_client_loop, served.base, served.headers(), "helper", f"load{i}", 20)
                               for i in range(32)] for x in f.result()]
    assert len(results) == 640
    codes = {c for c, _ in results}
    assert codes <= {200, 429}, codes
    answered = [rid for c, rid in results if c == 200]
    assert len(answered) >= 320  # the queue (64) holds all 32 clients: refusals are the exception
    rows = [r for r in records.rows(served.ws(), "helper") if r["id"] not in before]
    assert sorted(r["id"] for r in rows) == sorted(answered)  # each answer recorded exactly once
    assert all(r["status"] == "ok" and r["completion_tokens"] <= 2 for r in rows)


def test_sigkill_mid_load_loses_nothing_recorded(tmp_path) -> None:
    home = make_workspace(tmp_path)
    s = start_server(home, ["helper@1", "--guard", "off"], tmp_path / "server.log")
    stop = threading.Event()
    try:
        with cf.ThreadPoolExecutor(8) as pool:
            futs = [pool.submit(_client_loop, s.base, s.headers(), "helper", f"k{i}", 50, stop) for i in range(8)]
            ws = s.ws()
            while records.count(ws, "helper") < 24:
                threading.Event().wait(0.1)
            os.killpg(s.proc.pid, signal.SIGKILL)  # no shutdown, no flush: in-flight requests fail
            s.proc.wait(10)
            stop.set()
            results = [x for f in futs for x in f.result()]
    finally:
        stop_server(s.proc)
    answered = {rid for c, rid in results if c == 200}
    assert answered and any(c == -1 for c, _ in results)
    conn = sqlite3.connect(home / "cellops.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    s2 = start_server(home, ["helper@1", "--guard", "off"], tmp_path / "server2.log")
    try:
        ok = httpx.post(f"{s2.v1}/chat/completions", headers=s2.headers(), json=BODY | {"model": "helper"}, timeout=120)
        assert ok.status_code == 200
        kept = {r["id"] for r in records.rows(s2.ws(), "helper")}
        assert answered <= kept and ok.json()["id"] in kept  # every answer a client got is still there
        runs = {r["run_id"] for r in records.rows(s2.ws(), "helper")}
        assert all(s2.ws().get_run(rid)["kind"] == "prompt" for rid in runs)
    finally:
        stop_server(s2.proc)
