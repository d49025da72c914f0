"""What every LLM backend is: messages + params in, a streamed Generation out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..errors import InvalidInputError

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}
OnToken = Callable[[str], None]


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters shared by all backends. temperature 0 means greedy (reproducible)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 5.0:
            raise InvalidInputError(f"temperature must be between 0 and 5, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidInputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be >= 1, got {self.max_tokens}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenParams:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and v is not None}
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidInputError(
                f"unknown generation parameter(s) {', '.join(unknown)}; valid: "
                + ", ".join(cls.__dataclass_fields__)
            )
        if isinstance(known.get("stop"), str):
            known["stop"] = (known["stop"],)
        elif "stop" in known:
            known["stop"] = tuple(known["stop"])
        try:
            for k in ("temperature", "top_p"):
                if k in known:
                    known[k] = float(known[k])
            for k in ("max_tokens", "seed"):
                if k in known:
                    known[k] = int(known[k])
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"bad generation parameter: {e}") from None
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass
class Generation:
    """One model answer, with what it cost."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    ttft_s: float | None = None
    finish_reason: str = "stop"
    meta: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None  # set by cellops.generate(), which makes a trace per call

    @property
    def tokens_per_s(self) -> float:
        gen_time = self.latency_s - (self.ttft_s or 0.0)
        return self.completion_tokens / gen_time if gen_time > 0 else float("nan")

    def __str__(self) -> str:
        return self.text


class Pieces:
    """Streamed text pieces as a backend receives them: the parts, the time to the first one, and
    the caller's ``on_token`` called with each."""

    def __init__(self, on_token: OnToken | None) -> None:
        self.t0 = time.perf_counter()
        self.on_token = on_token
        self.parts: list[str] = []
        self.ttft: float | None = None

    def add(self, piece: str) -> None:
        if not piece:
            return
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.t0
        self.parts.append(piece)
        if self.on_token is not None:
            self.on_token(piece)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


class LLM(Protocol):
    uri: str
    supports_concurrency: bool  # True: calls may run in parallel threads (HTTP endpoints)

    def weights_hash(self) -> str: ...

    def generate(
        self, messages: list[Message], params: GenParams, on_token: OnToken | None = None
    ) -> Generation: ...


def to_messages(text_or_messages: str | list[Message], system: str | None = None) -> list[Message]:
    """A plain string becomes one user message; a system prompt goes first."""
    if isinstance(text_or_messages, str):
        msgs: list[Message] = [{"role": "user", "content": text_or_messages}]
    else:
        msgs = [dict(m) for m in text_or_messages]
        for i, m in enumerate(msgs):
            if m.get("role") not in {"system", "user", "assistant"} or not isinstance(
                m.get("content"), str
            ):
                raise InvalidInputError(
                    f"message {i} must be {{'role': system|user|assistant, 'content': str}}, got {m!r}"
                )
    if system and not (msgs and msgs[0]["role"] == "system"):
        msgs.insert(0, {"role": "system", "content": system})
    return msgs
