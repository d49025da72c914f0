"""Any OpenAI-compatible chat endpoint: ``openai:<base_url>#<model>``.

Works with NIM, vLLM, Ollama, llama.cpp's server and OpenAI itself. Streams with server-sent
events. The API key comes from CELLOPS_OPENAI_API_KEY or OPENAI_API_KEY (optional for local
servers).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ..errors import InvalidInputError, ModelError
from .base import Generation, GenParams, Message, OnToken, Pieces


class OpenAICompatModel:
    supports_concurrency = True

    def __init__(self, spec: str, uri: str, timeout_s: float = 120.0) -> None:
        base_url, sep, model = spec.partition("#")
        if not sep or not model or not base_url.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"bad model URI '{uri}': use openai:<base_url>#<model>, "
                "e.g. openai:http://127.0.0.1:8000/v1#smollm2"
            )
        self.uri, self.base_url, self.model = uri, base_url.rstrip("/"), model
        self.timeout_s = timeout_s
        key = os.environ.get("CELLOPS_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    def weights_hash(self) -> str:
        # An endpoint does not expose its weights; the (url, model) pair is the best identity.
        return hashlib.sha256(f"{self.base_url}#{self.model}".encode()).hexdigest()

    def generate(self, messages: list[Message], params: GenParams, on_token: OnToken | None = None) -> Generation:
        import httpx

        body = {
            "model": self.model, "messages": messages, "stream": True,
            "temperature": params.temperature, "top_p": params.top_p,
            "max_tokens": params.max_tokens, "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        url = f"{self.base_url}/chat/completions"
        got, finish, usage = Pieces(on_token), "stop", None
        chunks, done = 0, False
        try:
            with httpx.stream("POST", url, json=body, headers=self._headers, timeout=self.timeout_s) as r:
                if r.status_code >= 400:
                    r.read()
                    raise ModelError(f"{url} answered HTTP {r.status_code}: {r.text[:200]}")
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        break
                    chunk = json.loads(data)
                    chunks += 1
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        got.add((choice.get("delta") or {}).get("content") or "")
                        finish = choice.get("finish_reason") or finish
        except httpx.HTTPError as e:
            raise self._transport_error(e, "streaming an answer") from e
        except json.JSONDecodeError as e:
            raise ModelError(f"{url} sent a stream chunk that is not JSON ({e}); is it an OpenAI-compatible endpoint?") from e
        if not done and not chunks:  # e.g. llama.cpp's server on a prompt longer than its context
            raise ModelError(f"{url} closed the stream without an answer; the server log says why "
                             "(often: the prompt is longer than its context window)")
        prompt_tokens = int((usage or {}).get("prompt_tokens") or 0)
        completion_tokens = int((usage or {}).get("completion_tokens") or len(got.parts))
        return Generation(got.text, self.uri, prompt_tokens, completion_tokens, got.elapsed, got.ttft, finish)

    def _transport_error(self, e: Exception, doing: str) -> ModelError:
        """One line for any httpx failure: down, slow, or dropped mid-answer."""
        import httpx

        if isinstance(e, httpx.ConnectError):
            return ModelError(f"endpoint {self.base_url} is down or unreachable ({e}); start the server or fix the URL")
        if isinstance(e, httpx.TimeoutException):
            return ModelError(f"endpoint {self.base_url} did not answer within {self.timeout_s:.0f}s")
        return ModelError(f"endpoint {self.base_url} failed while {doing} ({type(e).__name__}: {e})")

    def chat_tools(self, messages: list[Message], tools: list[dict], tool_choice: Any,
                   params: GenParams) -> Any:
        """One non-streamed chat completion with ``tools``; the reply's tool calls (see tools.py)."""
        import time

        import httpx

        from .tools import reply_from_message

        body = {"model": self.model, "messages": messages, "tools": tools, "tool_choice": tool_choice,
                "temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens}
        if params.seed is not None:
            body["seed"] = params.seed
        url = f"{self.base_url}/chat/completions"
        t0 = time.perf_counter()
        try:
            r = httpx.post(url, json=body, headers=self._headers, timeout=self.timeout_s)
        except httpx.HTTPError as e:
            raise self._transport_error(e, "a request with tools") from e
        if r.status_code >= 400:
            raise ModelError(f"{url} answered HTTP {r.status_code} to a request with tools "
                             f"(does it support function calling?): {r.text[:200]}")
        data = r.json()
        if not data.get("choices"):
            raise ModelError(f"{url} sent no choices: {str(data)[:200]}")
        return reply_from_message(data["choices"][0], data.get("usage"), time.perf_counter() - t0)
