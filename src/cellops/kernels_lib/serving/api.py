"""The OpenAI wire format: request validation (pydantic), response and SSE chunk bodies, errors.

Only what a chat app needs is accepted; unknown fields that OpenAI clients send (``n=1``,
``logprobs``...) are ignored, except the ones whose meaning we cannot honour (n > 1, tools).
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InvalidInputError
from .targets import Turns


class APIError(Exception):
    """An error answered with an OpenAI-style body: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    user: str | None = Field(default=None, max_length=256)
    variables: dict[str, str | int | float | bool | None] | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only n=1 is supported")
        return v


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    response_id: str = Field(min_length=1, max_length=200)
    rating: Literal["up", "down"] | int
    comment: str = Field(default="", max_length=4000)
    correction: str = Field(default="", max_length=20000)

    @field_validator("rating")
    @classmethod
    def _scale(cls, v: str | int) -> str | int:
        if isinstance(v, int) and not 1 <= v <= 5:
            raise ValueError("rating must be up, down or a score from 1 to 5")
        return v


def parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise APIError(400, f"the request body is not valid JSON: {e}") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "body"
        raise APIError(400, f"{where}: {err['msg']}", param=where) from None


def to_turns(req: ChatRequest, max_tokens_limit: int, max_messages: int) -> Turns:
    """Last user message -> the input; earlier user/assistant turns -> conversation history.

    System messages from the client are dropped: the served prompt version owns its system prompt
    (that is what was tested and versioned)."""
    if len(req.messages) > max_messages:
        raise APIError(400, f"too many messages ({len(req.messages)}; at most {max_messages})", param="messages")
    if req.messages[-1].role != "user":
        raise APIError(400, "the last message must come from the user", param="messages")
    last = req.messages[-1].text()
    if not last.strip():
        raise APIError(400, "the last user message is empty", param="messages")
    history = [{"role": m.role, "content": m.text()} for m in req.messages[:-1]
               if m.role in ("user", "assistant")]
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is not None and max_tokens > max_tokens_limit:
        raise APIError(400, f"max_tokens {max_tokens} is above this server's limit of {max_tokens_limit}",
                       param="max_tokens")
    params = {"max_tokens": max_tokens, "temperature": req.temperature, "top_p": req.top_p,
              "stop": req.stop, "seed": req.seed}
    return Turns(last, history, dict(req.variables or {}), {k: v for k, v in params.items() if v is not None})


def completion(rid: str, app: str, text: str, finish: str, usage: dict[str, int],
               extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": app,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish, "logprobs": None}],
            "usage": usage, **extra}


def chunk(rid: str, app: str, delta: dict[str, str], finish: str | None = None,
          extra: dict[str, Any] | None = None) -> bytes:
    body = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": app,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **(extra or {})}
    return sse(body)


def sse(body: dict[str, Any] | str) -> bytes:
    data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def from_cellops_error(e: Exception) -> APIError:
    """A CellopsError from the call path (a missing template variable...) -> 400."""
    if isinstance(e, InvalidInputError):
        return APIError(400, str(e))
    return APIError(500, str(e), type_="server_error")
