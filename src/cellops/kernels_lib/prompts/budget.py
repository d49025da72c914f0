"""A hard budget for an optimization: model calls, tokens and wall time, never exceeded.

Every model call of the optimizer (the prompt's own calls, system-prompt proposals, llm-rubric
grading) goes through :class:`MeteredLLM`, which *reserves* before the call reaches the model:

- calls: one per call;
- tokens: an upper bound on what the call can use: the UTF-8 bytes of the messages (a BPE token
  covers at least one byte) plus a few template tokens per message, plus what the chat template
  adds on its own (a default system prompt, say: ``FIRST_CALL_OVERHEAD`` until a call has been
  seen, then the largest overhead observed), plus ``max_tokens``;
- time: a call starts only if the slowest call so far still fits in what is left.

A reservation that does not fit raises :class:`BudgetSpent` and nothing is sent. After the call
the real token counts replace the reservation. Answers served by the workspace response cache
never reach the model and cost nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import CellopsError, InvalidInputError
from ..models.base import Generation, GenParams, Message, OnToken

TEMPLATE_TOKENS_PER_MESSAGE = 8  # role markers and separators a chat template adds
FIRST_CALL_OVERHEAD = 256  # template text beyond the messages, before any call has shown it


class BudgetSpent(CellopsError):
    """The next call would exceed the budget; nothing was sent."""


@dataclass(frozen=True)
class Budget:
    calls: int
    tokens: int | None = None  # None: no token limit
    seconds: float | None = None  # None: no time limit

    @classmethod
    def parse(cls, value: Any) -> Budget:
        """An int (calls), a dict {calls, tokens, seconds} or a Budget."""
        if isinstance(value, Budget):
            b = value
        elif isinstance(value, bool):
            raise InvalidInputError(f"budget must be a number of model calls, got {value!r}")
        elif isinstance(value, int):
            b = cls(value)
        elif isinstance(value, dict):
            unknown = sorted(set(value) - {"calls", "tokens", "seconds"})
            if unknown or "calls" not in value:
                raise InvalidInputError("budget is {calls: N, tokens: N, seconds: S} (calls required); "
                                        f"got keys {', '.join(map(str, value)) or 'none'}")
            b = cls(int(value["calls"]), value.get("tokens"), value.get("seconds"))
        else:
            raise InvalidInputError(f"budget must be a number of model calls, got {value!r}")
        if b.calls < 1:
            raise InvalidInputError(f"budget must allow at least 1 model call, got {b.calls}; "
                                    "e.g. --budget 40")
        if b.tokens is not None and int(b.tokens) < 1:
            raise InvalidInputError(f"a token budget must be >= 1, got {b.tokens}")
        if b.seconds is not None and float(b.seconds) <= 0:
            raise InvalidInputError(f"a time budget must be > 0 seconds, got {b.seconds}")
        return b

    def describe(self) -> str:
        parts = [f"{self.calls} model calls"]
        parts.append(f"{self.tokens} tokens" if self.tokens is not None else "no token limit")
        parts.append(f"{self.seconds:g} s" if self.seconds is not None else "no time limit")
        return ", ".join(parts)


@dataclass
class Meter:
    budget: Budget
    calls: int = 0
    tokens: int = 0
    slowest_s: float = 0.0
    overhead: int | None = None  # largest prompt tokens seen beyond the message bound
    t0: float = field(default_factory=time.perf_counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.t0

    @property
    def calls_left(self) -> int:
        return self.budget.calls - self.calls

    def reserve(self, messages: list[Message], params: GenParams) -> int:
        """Book one call (raises BudgetSpent if it might not fit); returns the tokens reserved."""
        prompt = sum(len(m["content"].encode()) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages)
        with self._lock:
            bound = prompt + (FIRST_CALL_OVERHEAD if self.overhead is None else self.overhead) + params.max_tokens
            b = self.budget
            if self.calls + 1 > b.calls:
                raise BudgetSpent(f"the budget of {b.calls} model calls is spent")
            if b.tokens is not None and self.tokens + bound > b.tokens:
                raise BudgetSpent(f"the next call could use up to {bound} tokens; "
                                  f"{b.tokens - self.tokens} of {b.tokens} are left")
            if b.seconds is not None and self.elapsed_s + self.slowest_s > b.seconds:
                raise BudgetSpent(f"the time budget of {b.seconds:g} s would be exceeded")
            self.calls += 1
            self.tokens += bound
        return bound

    def settle(self, reserved: int, gen: Generation | None, took_s: float,
               messages: list[Message] | None = None) -> None:
        with self._lock:
            used = gen.prompt_tokens + gen.completion_tokens if gen is not None else 0
            self.tokens += used - reserved  # the real count replaces the reservation
            self.slowest_s = max(self.slowest_s, took_s)
            if gen is not None and messages is not None:
                prompt = sum(len(m["content"].encode()) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages)
                self.overhead = max(self.overhead or 0, gen.prompt_tokens - prompt)

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "tokens": self.tokens, "seconds": round(self.elapsed_s, 2)}


class MeteredLLM:
    """An LLM whose every call is booked on a Meter first (wrap it in CachedLLM so that cache
    hits never get here)."""

    def __init__(self, llm: Any, meter: Meter) -> None:
        self.llm, self.meter = llm, meter
        self.uri = llm.uri
        self.supports_concurrency = llm.supports_concurrency

    def weights_hash(self) -> str:
        return self.llm.weights_hash()

    def generate(self, messages: list[Message], params: GenParams,
                 on_token: OnToken | None = None) -> Generation:
        reserved = self.meter.reserve(messages, params)
        t0 = time.perf_counter()
        gen = None
        try:
            gen = self.llm.generate(messages, params, on_token)
            return gen
        finally:
            self.meter.settle(reserved, gen, time.perf_counter() - t0, messages)
