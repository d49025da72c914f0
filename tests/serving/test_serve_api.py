"""`cellops serve` against the official openai client: chat, stream, models, feedback, errors."""

from __future__ import annotations

import concurrent.futures as cf
import json

import httpx
import pytest

from cellops.kernels_lib.serving import ab, records

pytestmark = pytest.mark.slow


def _rows(served) -> list[dict]:
    return records.rows(served.ws(), "helper")


def test_models_chat_stream_and_feedback(served) -> None:
    client = served.client()
    assert [m.id for m in client.models.list().data] == ["helper"]

    r = client.chat.completions.create(model="helper", max_tokens=5, user="alice",
                                       messages=[{"role": "user", "content": "What colour is the sky?"}])
    text = r.choices[0].message.content
    assert text and r.usage.completion_tokens <= 5 and r.id.startswith("chatcmpl-")
    row = records.get(served.ws(), r.id)
    assert row["status"] == "ok" and row["client"] == "alice" and row["output"] == text
    assert row["input"] == "What colour is the sky?" and row["completion_tokens"] == r.usage.completion_tokens
    assert row["variant"] == ab.assign("helper", "alice", 0.5)
    run = served.ws().get_run(row["run_id"])  # the same prompt run record a notebook cell makes
    assert run["kind"] == "prompt" and run["record"]["source"] == "serve"
    assert run["record"]["prompt"] == row["target"] and run["record"]["output"] == text

    stream = client.chat.completions.create(model="helper", max_tokens=5, stream=True, user="alice",
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "What colour is the sky?"}])
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 5
    srow = records.get(served.ws(), chunks[0].id)
    assert srow["stream"] and srow["output"] == streamed and streamed == text  # greedy: same answer

    fb = httpx.post(f"{served.v1}/feedback", headers=served.headers(), json={
        "response_id": r.id, "rating": "down", "comment": "too vague", "correction": "The sky is blue."})
    assert fb.status_code == 200, fb.text
    from cellops.kernels_lib.prompts import feedback

    [item] = [f for f in feedback.list_feedback("helper", served.ws()) if f["run_id"] == row["run_id"]]
    assert item["rating"] == -1 and item["correction"] == "The sky is blue." and item["output"] == text
    assert httpx.post(f"{served.v1}/feedback", headers=served.headers(),
                      json={"response_id": chunks[0].id, "rating": 5}).json()["score"] == 5
    missing = httpx.post(f"{served.v1}/feedback", headers=served.headers(), json={"response_id": "chatcmpl-nope", "rating": "up"})
    assert missing.status_code == 404 and "error" in missing.json()
    bad = httpx.post(f"{served.v1}/feedback", headers=served.headers(), json={"response_id": r.id, "rating": 9})
    assert bad.status_code == 400 and "rating" in bad.json()["error"]["message"]

    # served ratings -> training rows (`cellops feedback export`), read the way %%finetune reads them
    from cellops.cli import main
    from cellops.kernels_lib.train import data

    out = served.home.parent / "fb"
    for fmt in ("sft", "preference"):
        assert main(["--workspace", str(served.home), "feedback", "export", "helper", str(out / f"{fmt}.jsonl"),
                     "--format", fmt]) == 0
    sft = [json.loads(x) for x in (out / "sft.jsonl").read_text().splitlines()]
    answers = [row["messages"][-1]["content"] for row in sft]
    assert answers == ["The sky is blue.", streamed]  # the correction of the 👎 answer, the 👍 answer
    assert all(row["messages"][-2]["role"] == "user" for row in sft)
    assert len(data.load(out / "sft.jsonl").rows) == len(sft)
    [pair] = [json.loads(x) for x in (out / "preference.jsonl").read_text().splitlines()]
    assert pair["chosen"][0]["content"] == "The sky is blue." and pair["rejected"][0]["content"] == text


def test_bad_requests_get_openai_errors_and_are_not_recorded(served) -> None:
    import openai

    before = len(_rows(served))
    url, h = f"{served.v1}/chat/completions", served.headers()
    ok_msg = [{"role": "user", "content": "hi"}]
    cases = {
        "invalid json": httpx.post(url, headers=h | {"Content-Type": "application/json"}, content=b"{not json"),
        "wrong schema": httpx.post(url, headers=h, json={"model": "helper", "messages": "hi"}),
        "no messages": httpx.post(url, headers=h, json={"model": "helper", "messages": []}),
        "huge body": httpx.post(url, headers=h, json={"model": "helper", "messages": [{"role": "user", "content": "x" * 30000}]}),
        "max_tokens": httpx.post(url, headers=h, json={"model": "helper", "messages": ok_msg, "max_tokens": 5000}),
        "unknown model": httpx.post(url, headers=h, json={"model": "gpt-9", "messages": ok_msg}),
        "no token": httpx.post(url, json={"model": "helper", "messages": ok_msg}),
        "wrong token": httpx.post(url, headers={"Authorization": "Bearer nope"}, json={"model": "helper", "messages": ok_msg}),
        "missing variable route": httpx.get(f"{served.v1}/nothing-here", headers=h),
    }
    want = {"invalid json": 400, "wrong schema": 400, "no messages": 400, "huge body": 413,
            "max_tokens": 400, "unknown model": 404, "no token": 401, "wrong token": 401,
            "missing variable route": 404}
    for name, resp in cases.items():
        assert resp.status_code == want[name], (name, resp.status_code, resp.text)
        err = resp.json()["error"]
        assert err["message"] and err["type"], name
    assert len(_rows(served)) == before  # no answer recorded for any of them

    bad = served.client()
    bad.api_key = "wrong-token"
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="helper", messages=ok_msg)
    with pytest.raises(openai.NotFoundError):
        served.client().chat.completions.create(model="gpt-9", messages=ok_msg)
    with pytest.raises(openai.BadRequestError):
        served.client().chat.completions.create(model="helper", messages=ok_msg, max_tokens=5000)
    assert len(_rows(served)) == before
    assert httpx.get(served.base + "/healthz").json()["status"] == "ok"  # no token needed


def test_ab_split_and_sticky_assignment() -> None:
    ids = [f"user-{i}" for i in range(1000)]
    share_b = sum(ab.assign("helper", u, 0.5) == "b" for u in ids) / len(ids)
    assert abs(share_b - 0.5) <= 0.03
    share_b20 = sum(ab.assign("helper", u, 0.2) == "b" for u in ids) / len(ids)
    assert abs(share_b20 - 0.2) <= 0.03
    assert all(ab.assign("helper", u, 0.5) == ab.assign("helper", u, 0.5) for u in ids[:50])
    assert {ab.assign("x", u, 0.5) for u in ids[:20]} == {"a", "b"}


def test_ab_real_traffic_is_sticky_per_user(served) -> None:
    client = served.client()
    users = [f"u{i}" for i in range(8)] * 2
    seen: dict[str, set[str]] = {}
    for u in users:  # X-User-Id header for half of them, the openai `user` field for the rest
        kw = {"user": u} if int(u[1:]) % 2 else {"extra_headers": {"X-User-Id": u}}
        r = client.chat.completions.create(model="helper", max_tokens=2, messages=[{"role": "user", "content": "Hi"}], **kw)
        seen.setdefault(u, set()).add(r.model_extra["cellops"]["variant"])
        assert records.get(served.ws(), r.id)["client"] == u
    assert all(len(v) == 1 for v in seen.values())
    assert {next(iter(v)) for v in seen.values()} == {"a", "b"}
    assert {u: next(iter(v)) for u, v in seen.items()} == {u: ab.assign("helper", u, 0.5) for u in seen}


def test_per_client_concurrency_limit_answers_429(served) -> None:
    body = {"model": "helper", "max_tokens": 6, "user": "greedy",
            "messages": [{"role": "user", "content": "Count to ten."}]}
    before = len(_rows(served))
    with cf.ThreadPoolExecutor(6) as pool:
        resps = list(pool.map(lambda _: httpx.post(f"{served.v1}/chat/completions", headers=served.headers(),
                                                   json=body, timeout=120), range(6)))
    codes = [r.status_code for r in resps]
    assert set(codes) <= {200, 429} and 429 in codes and 200 in codes, codes
    for r in resps:
        if r.status_code == 429:
            assert r.json()["error"]["type"] == "rate_limit_error" and r.headers["retry-after"]
    ok_ids = {r.json()["id"] for r in resps if r.status_code == 200}
    new = _rows(served)[before:]
    assert {row["id"] for row in new} == ok_ids and len(new) == len(ok_ids)


def test_variables_from_extra_body_and_history_reach_the_prompt(served) -> None:
    from cellops.kernels_lib import prompts

    # a second, in-process app over the same workspace: the prompt reads two variables
    ws = served.ws()
    prompts.save("tone", "In a {{ tone }} tone, answer: {{ question }}", params={"max_tokens": 4}, workspace=ws)
    from cellops.kernels_lib.serving import targets

    t = targets.parse("tone", targets.Options(ws, policy=None, input_var="question"))
    out = t.answer(targets.Turns("Why is grass green?", [{"role": "user", "content": "Hello"},
                                                          {"role": "assistant", "content": "Hi!"}],
                                 {"tone": "cheerful"}, {"max_tokens": 3}), None)
    msgs = ws.get_run(out.run_id)["record"]["messages"]
    assert msgs[-3:-1] == [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]
    assert msgs[-1]["content"] == "In a cheerful tone, answer: Why is grass green?"
    with pytest.raises(Exception, match="input-var"):
        targets.parse("tone", targets.Options(ws, policy=None))
    assert json.loads(json.dumps(out.versions))["target"] == "tone@1"


def test_rag_app_answers_with_citations_and_records_redacted_input(workspace) -> None:
    from starlette.testclient import TestClient

    from cellops.kernels_lib import rag
    from cellops.kernels_lib.serving import ServeConfig, auth, create_app

    rag.build("museum", {"docs": [{"id": "hours", "text": "The museum opens at 9 am every day except Monday."},
                                  {"id": "cafe", "text": "The museum cafe serves soup and bread until 4 pm."}]},
              progress=False)
    app = create_app(ServeConfig("rag:museum", guard="default", workspace=str(workspace.root)))
    token, created = auth.load_token(workspace, "museum", None)
    assert not created and len(token) > 30
    question = "When does the museum open? My card is 4111 1111 1111 1111."
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        r = c.post("/v1/chat/completions", json={"model": "museum", "max_tokens": 12, "user": "v1",
                                                  "messages": [{"role": "user", "content": question}]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert isinstance(body["citations"], list) and body["cellops"]["target"] == "museum@1"
        assert all({"n", "source", "chunk", "score"} <= set(c) for c in body["citations"])
        with c.stream("POST", "/v1/chat/completions", json={"model": "museum", "max_tokens": 12, "stream": True,
                                                             "messages": [{"role": "user", "content": question}]}) as s:
            events = [ln[6:] for ln in s.iter_lines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]" and "citations" in json.loads(events[-2])
    row = records.get(workspace, body["id"])
    assert "4111" not in row["input"] and "<CREDIT_CARD" in row["input"]
    run = workspace.get_run(row["run_id"])
    assert run["kind"] == "rag" and "4111" not in json.dumps(run["record"]["messages"])
    assert row["record"]["guard"]["input"]["allowed"] and row["record"]["versions"]["guard_policy"]


def test_timeout_answers_504_stops_generation_and_records_it(workspace) -> None:
    import time

    from starlette.testclient import TestClient

    from cellops.kernels_lib import prompts
    from cellops.kernels_lib.serving import ServeConfig, auth, create_app

    prompts.save("slow", "Write a long story about {{ topic }}.", params={"max_tokens": 200}, workspace=workspace)
    app = create_app(ServeConfig("slow", guard="off", timeout_s=0.3, workspace=str(workspace.root)))
    token, _ = auth.load_token(workspace, "slow", None)
    with TestClient(app) as c:
        t0 = time.perf_counter()
        r = c.post("/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                   json={"model": "slow", "messages": [{"role": "user", "content": "dragons"}]})
        took = time.perf_counter() - t0
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout", r.text
        assert took < 5  # answered at the deadline, not after 200 tokens
        deadline = time.monotonic() + 60
        while not records.rows(workspace, "slow") and time.monotonic() < deadline:
            time.sleep(0.1)  # the stopped generation records itself when its thread ends
    [row] = records.rows(workspace, "slow")
    assert row["status"] == "timeout" and row["run_id"] is None and row["output"] == ""


def test_chain_target_maps_the_message_and_variables_to_its_inputs(workspace) -> None:
    from starlette.testclient import TestClient

    from cellops.kernels_lib import chains
    from cellops.kernels_lib.serving import ServeConfig, auth, create_app

    chains.save("polite", {"inputs": {"question": None, "tone": "plain"}, "steps": {
        "answer": {"generate": "In a {{ inputs.tone }} tone, answer: {{ inputs.question }}",
                   "params": {"max_tokens": 4}}}, "output": "{{ steps.answer.output }}"}, workspace)
    app = create_app(ServeConfig("chain:polite", guard="default", workspace=str(workspace.root)))
    token, _ = auth.load_token(workspace, "polite", None)
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                   json={"model": "polite", "variables": {"tone": "cheerful"},
                         "messages": [{"role": "user", "content": "Why is snow white? My card is 4111 1111 1111 1111."}]})
    assert r.status_code == 200, r.text
    body = r.json()
    row = records.get(workspace, body["id"])
    assert row["status"] == "ok" and row["target"] == "chain:polite@1" and row["output"] == body["choices"][0]["message"]["content"]
    # the policy redacts the card number: neither the serve record nor the chain's run keeps it
    assert "4111" not in row["input"] and "<CREDIT_CARD" in row["input"] and row["input"].startswith("Why is snow white?")
    assert row["record"]["guard"]["input"]["allowed"] and row["record"]["guard"]["input"]["findings"] >= 1
    run = workspace.get_run(row["run_id"])
    assert run["kind"] == "chain" and run["record"]["inputs"] == {"question": row["input"], "tone": "cheerful"}


def test_load_balancer_traceparent_continues_the_callers_trace(served) -> None:
    from cellops.kernels_lib.tracking import traces

    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    header = {"traceparent": f"00-{caller_trace}-{caller_span}-01"}
    for stream in (False, True):
        r = served.client().chat.completions.create(model="helper", max_tokens=2, stream=stream, extra_headers=header,
                                                    messages=[{"role": "user", "content": "Say hi."}])
        rid = list(r)[0].id if stream else r.id
        row = records.get(served.ws(), rid)
        assert row["trace_id"] == caller_trace, (stream, row["trace_id"])
        spans = traces.get(caller_trace, served.ws()).spans
        [root] = [s for s in spans if s.name == "serve helper" and s.attrs["cellops.response_id"] == rid]
        assert root.parent_id == caller_span  # the served request's root hangs under the caller's span
    plain = served.client().chat.completions.create(model="helper", max_tokens=2, extra_headers={"traceparent": "junk"},
                                                    messages=[{"role": "user", "content": "Say hi."}])
    assert records.get(served.ws(), plain.id)["trace_id"] not in (None, caller_trace)  # a bad header: a new trace


def test_client_leaving_mid_stream_stops_generation_and_frees_its_slot(served) -> None:
    import time

    body = {"model": "helper", "max_tokens": 60, "stream": True, "user": "leaver",
            "messages": [{"role": "user", "content": "Tell me a long story about the sea."}]}
    ids = []
    for _ in range(3):  # per-client limit is 2: a leaked slot would turn the third into a 429
        with httpx.stream("POST", f"{served.v1}/chat/completions", headers=served.headers(), json=body, timeout=120) as s:
            assert s.status_code == 200
            lines = s.iter_lines()
            first = next(ln for ln in lines if ln.startswith("data: "))
            ids.append(json.loads(first[6:])["id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not records.get(served.ws(), ids[0]):
        time.sleep(0.2)
    # the first reached the model and was stopped; later ones may have left while still queued
    # (they never reached the model and are not recorded)
    rows = [r for r in (records.get(served.ws(), i) for i in ids) if r is not None]
    assert rows[0]["id"] == ids[0] and rows[0]["status"] == "cancelled" and rows[0]["run_id"] is None
    assert all(r["status"] in ("cancelled", "ok") for r in rows)
    ok = httpx.post(f"{served.v1}/chat/completions", headers=served.headers(), timeout=120,
                    json=body | {"stream": False, "max_tokens": 2})
    assert ok.status_code == 200, ok.text
