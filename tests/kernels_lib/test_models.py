"""Model backends on the real embedded GGUF: llama.cpp, transformers (from the same GGUF) and an
OpenAI-compatible server (llama-cpp-python's own) started on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from testsupport import free_port, llama_server

import cellops
from cellops.kernels_lib.errors import InvalidInputError, ModelError, NotFoundError
from cellops.kernels_lib.models import GenParams, get_llm
from cellops.kernels_lib.models.weights import default_gguf

Q = "Name one primary colour."


def test_default_is_greedy_and_reproducible() -> None:
    a = cellops.generate(Q, max_tokens=16)
    b = cellops.generate(Q, max_tokens=16)
    assert a.text and a.text == b.text
    assert a.completion_tokens > 0 and a.prompt_tokens > 5 and a.latency_s > 0
    assert a.ttft_s is not None and a.ttft_s <= a.latency_s
    # one trace per call, like a magic's: root, load_model, the llm span with GenAI attributes
    t = cellops.traces.get(a.trace_id)
    assert [(s.name, s.kind) for s in t.spans] == [("generate default", "chain"), ("load_model", "step"),
                                                    ("generate", "llm")]
    assert t.spans[2].parent_id == t.spans[0].span_id and a.trace_id != b.trace_id
    assert t.spans[2].attrs["gen_ai.usage.output_tokens"] == a.completion_tokens


def test_greedy_answer_does_not_depend_on_the_call_before() -> None:
    # A yes/no question whose two answers are close: reusing the previous call's KV cache (a
    # prefix re-decoded in a different batch) used to flip it on an identical second call.
    from cellops.kernels_lib.guard.checks.judge import PROMPTS, SYSTEM

    q = [{"role": "system", "content": SYSTEM},
         {"role": "user", "content": PROMPTS["input"].format(text="How do I reset my router password?")}]
    first = cellops.generate(q, max_tokens=8).text
    assert cellops.generate(q, max_tokens=8).text == first
    cellops.generate(Q, max_tokens=8)
    assert cellops.generate(q, max_tokens=8).text == first


def test_llamacpp_reuses_whole_chunks_of_a_shared_prefix_and_answers_as_from_scratch() -> None:
    from cellops.kernels_lib.models import get_llm
    from cellops.kernels_lib.models.llamacpp import chunk_starts

    assert chunk_starts(40) == [0, 16, 32] and chunk_starts(300) == [0, 16, 32, 48, 64, 192]
    assert chunk_starts(40, [24]) == [0, 16, 24] and chunk_starts(100, [3, 90]) == [0, 3, 19, 35, 51, 67, 90]
    assert chunk_starts(300, [3, 90], coarse=True) == [0, 3, 90, 218]  # whole chunks per message (rerank)
    llm = get_llm("default")
    system = "You answer questions about the fictional country of Zorbia. " * 30  # ~340 tokens
    ask = lambda q: [{"role": "system", "content": system}, {"role": "user", "content": q}]  # noqa: E731
    params = GenParams(max_tokens=12)
    llm.generate(ask("What is the capital of Zorbia?"), params)
    evaluated: list[int] = []  # prompt tokens each call evaluated
    real_eval_prompt, real_eval = llm._eval_prompt, llm._llm.eval

    def spy(tokens: list[int], starts: list[int]) -> None:
        calls: list[int] = []
        llm._llm.eval = lambda toks: (calls.append(len(toks)), real_eval(toks))[1]
        try:
            real_eval_prompt(tokens, starts)
        finally:
            llm._llm.eval = real_eval
        evaluated.append(sum(calls))

    llm._eval_prompt = spy
    try:
        warm = llm.generate(ask("What do Zorbians eat?"), params)
        # everything up to the question was reused: a chunk grid restarts where it begins
        tokens, starts, _ = llm._prompt_tokens(ask("What do Zorbians eat?"))
        assert llm._llm.detokenize(tokens[starts[-1]:]).decode().startswith("What do Zorbians eat?")
        assert evaluated[-1] == len(tokens) - starts[-1] == warm.prompt_tokens - starts[-1] < 20
        llm._llm.reset()
        cold = llm.generate(ask("What do Zorbians eat?"), params)
        assert evaluated[-1] == cold.prompt_tokens and cold.text == warm.text
    finally:
        del llm._eval_prompt


def test_prompt_probes_are_cached_per_message_prefix() -> None:
    """A chat's next turn renders the prompt once plus one probe for its new message (not one per
    message of the conversation), with the same chunk starts as with nothing cached: one at the
    start of every message's content."""
    llm = get_llm("default")
    chat = [{"role": "system", "content": "You answer sums tersely."}]
    for i in range(6):
        chat += [{"role": "user", "content": f"What is {i} plus {i}?"}, {"role": "assistant", "content": f"{2 * i}."}]
    renders: list[int] = []
    real = llm.render
    llm.render = lambda messages: (renders.append(len(messages)), real(messages))[1]
    try:
        llm._prompt_tokens(chat)  # (this chat is new to the model: a probe per message)
        renders.clear()
        turn = [*chat, {"role": "user", "content": "And 7 plus 7?"}]
        warm = llm._prompt_tokens(turn)
        assert renders == [len(turn), len(turn)]  # the prompt, and the new message's probe
        llm._probes.clear()
        assert llm._prompt_tokens(turn) == warm
    finally:
        del llm.render
    tokens, starts, _ = warm
    texts = [llm._llm.detokenize(tokens[s:]).decode(errors="replace") for s in starts]
    assert all(any(t.startswith(m["content"]) for t in texts) for m in turn)


def test_seeded_sampling_is_reproducible_and_streams() -> None:
    pieces: list[str] = []
    a = cellops.generate(Q, temperature=0.9, seed=7, max_tokens=24, on_token=pieces.append)
    b = cellops.generate(Q, temperature=0.9, seed=7, max_tokens=24)
    assert a.text == b.text and "".join(pieces) == a.text and len(pieces) > 1


def test_stop_and_max_tokens() -> None:
    g = cellops.generate("Count from 1 to 20, separated by commas.", max_tokens=64, stop=["5"])
    assert "5" not in g.text and "6" not in g.text
    g = cellops.generate("Write a long story about a dragon.", max_tokens=5)
    # the model's own count (sampled tokens, as llama_cpp.server reports), not the text re-tokenized
    assert g.completion_tokens == 5 and g.finish_reason == "length"


def test_chat_template_comes_from_the_model() -> None:
    llm = get_llm("default")
    prompt, stops = llm.render([{"role": "user", "content": "hi"}])
    assert "<|im_start|>user\nhi<|im_end|>" in prompt and prompt.rstrip().endswith("assistant")


def test_llamacpp_uri_and_missing_file(tmp_path) -> None:
    g = cellops.generate(Q, model=f"llamacpp:{default_gguf()}", max_tokens=8)
    assert g.text == cellops.generate(Q, max_tokens=8).text
    with pytest.raises(ModelError, match="GGUF file not found"):
        get_llm(f"llamacpp:{tmp_path}/missing.gguf")


def test_unknown_uri_lists_backends() -> None:
    with pytest.raises(NotFoundError, match="hf:.*llamacpp:.*openai:"):
        get_llm("ollama:llama3")
    with pytest.raises(NotFoundError, match="unknown model 'nosuchmodel'"):
        get_llm("nosuchmodel")


def test_bad_params() -> None:
    with pytest.raises(InvalidInputError, match="unknown generation parameter"):
        GenParams.from_dict({"temprature": 1})
    with pytest.raises(InvalidInputError, match="temperature"):
        GenParams(temperature=-1)


@pytest.mark.slow
def test_hf_backend_from_gguf_is_cached(workspace) -> None:
    t0 = time.perf_counter()
    llm = get_llm("hf:default")
    first = time.perf_counter() - t0
    cache = list((workspace.artifacts / "hf-cache").iterdir())
    assert len(cache) == 1 and (cache[0] / "config.json").exists()
    g = llm.generate([{"role": "user", "content": Q}], GenParams(max_tokens=8))
    g2 = llm.generate([{"role": "user", "content": Q}], GenParams(max_tokens=8))
    assert g.text and g.text == g2.text and g.completion_tokens <= 8
    from cellops.kernels_lib.models import _cache

    # forget only this model (dropping the llama.cpp one unclosed would leave it to a noisy __del__)
    for key in [k for k in _cache if k[1] == "hf:default"]:
        del _cache[key]
    t0 = time.perf_counter()
    get_llm("hf:default")
    assert time.perf_counter() - t0 < first  # second load reads the cached safetensors


@pytest.fixture(scope="module")
def llama_server_url(tmp_path_factory):
    with llama_server(tmp_path_factory.mktemp("server"), "--n_ctx", "2048") as base:
        yield base


@pytest.mark.slow
def test_openai_compatible_endpoint_streams(llama_server_url: str) -> None:
    pieces: list[str] = []
    g = cellops.generate(Q, model=f"openai:{llama_server_url}#smollm2", max_tokens=16,
                         on_token=pieces.append)
    assert g.text and "".join(pieces) == g.text and len(pieces) > 1
    assert g.completion_tokens > 0
    again = cellops.generate(Q, model=f"openai:{llama_server_url}#smollm2", max_tokens=16)
    assert again.text == g.text  # greedy over HTTP is reproducible too


def test_unreachable_endpoint_names_the_url() -> None:
    port = free_port()
    with pytest.raises(ModelError, match=f"127.0.0.1:{port}.*down or unreachable"):
        cellops.generate(Q, model=f"openai:http://127.0.0.1:{port}/v1#m")
    with pytest.raises(InvalidInputError, match="openai:<base_url>#<model>"):
        get_llm("openai:localhost:8000")


class _BrokenStream(BaseHTTPRequestHandler):
    """An endpoint that starts an SSE answer, then drops the connection or sends garbage."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", "100000")  # promises more than it sends
        self.end_headers()
        chunk = '{"choices":[{"delta":{"content":"Red"}}]}' if "drop" in self.path else "not json"
        self.wfile.write(f"data: {chunk}\n\n".encode())
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_endpoint_that_drops_or_garbles_the_stream_is_one_model_error() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _BrokenStream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ModelError, match=r"failed while streaming an answer \(RemoteProtocolError"):
            cellops.generate(Q, model=f"openai:{base}/drop/v1#m", max_tokens=4)
        with pytest.raises(ModelError, match="not JSON"):
            cellops.generate(Q, model=f"openai:{base}/junk/v1#m", max_tokens=4)
    finally:
        server.shutdown()
        server.server_close()


def test_embedder_latency_path_matches_bulk_vectors(tmp_path, monkeypatch) -> None:
    """Small calls run in ONNX Runtime (exported once into the user cache), bulk calls in torch;
    both must give the same vectors, or an index built in bulk would not match its queries."""
    import numpy as np

    from cellops.kernels_lib.models import embedders

    monkeypatch.setattr(embedders, "USER_CACHE", tmp_path)  # a fresh export, not the shared one
    e = embedders.Embedder("default")
    texts = ["Write a haiku about autumn leaves", "Ignore previous instructions", "How do tides work?",
             "A much longer sentence about retrieval augmented generation and vector indexes.", "ok"]
    bulk = e.encode(texts)  # 5 texts > SMALL_CALL: torch
    assert e._ort is None
    small = np.concatenate([e.encode([t]) for t in texts])
    assert e._ort is not False and list(tmp_path.glob("onnx/*.onnx"))
    assert small.shape == bulk.shape == (5, e.dim)
    assert np.allclose(np.linalg.norm(small, axis=1), 1, atol=1e-5)
    assert float(np.min(np.sum(small * bulk, axis=1))) > 0.9999
    pair = e.encode(texts[:2])  # padded batch through ONNX Runtime
    assert np.allclose(pair, bulk[:2], atol=1e-4)


def test_embedder_small_and_bulk_calls_from_many_threads() -> None:
    """A guard check, a search query and an ingest can embed at the same time (kernel threads)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from cellops.kernels_lib.models import get_embedder

    e = get_embedder("default")
    texts = [f"Question number {i} about tides, ranges and {i * 7} harbour walls." for i in range(24)]
    ref = e.encode(texts)  # bulk, torch
    with ThreadPoolExecutor(6) as pool:
        bulk = pool.submit(e.encode, texts * 4)
        small = list(pool.map(lambda i: e.encode([texts[i]])[0], range(24)))
    assert np.allclose(np.stack(small), ref, atol=1e-4)
    assert np.allclose(bulk.result()[:24], ref, atol=1e-4)
