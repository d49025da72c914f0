"""What one served app is: its targets (A and optionally B), limits and where it listens.

The config travels to the server process (and to each uvicorn worker) as JSON in an environment
variable, so ``cellops serve`` in a terminal, ``%serve start`` and ``--workers N`` all build the
same app from the same values.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InvalidInputError
from ..workspace import check_name

ENV = "CELLOPS_SERVE_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    target: str  # NAME@V (prompt) | rag:INDEX@V | chain:NAME@V
    name: str = ""  # the app name: /v1/models id, records, %monitor NAME (default: from target)
    b: str | None = None  # a second target for A/B tests
    split: float = 0.5  # share of users sent to B
    guard: str | None = None  # policy name, "off", or None: the workspace's active policy
    model: str | None = None  # model URI override (default: the prompt's own model)
    input_var: str | None = None  # the template variable the last user message fills
    rag_prompt: str | None = None  # answer prompt of a rag: target (default rag-answer)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    token_file: str | None = None
    workspace: str = ""  # the .cellops folder (resolved by the caller)
    max_body_bytes: int = 1 << 20  # a larger request body is refused with 413
    max_tokens_limit: int = 1024  # a request asking for more max_tokens is refused with 400
    max_messages: int = 64
    per_client: int = 4  # concurrent requests per client id; more are answered with 429
    max_queue: int = 64  # requests waiting for the model; more are answered with 429
    timeout_s: float = 120.0  # a request that takes longer is stopped and answered with 504
    cache: bool = False  # the workspace response cache (off: every request reaches the model)

    def __post_init__(self) -> None:
        if not self.target or not self.target.strip():
            raise InvalidInputError("serve needs a target: NAME@V, rag:INDEX@V or chain:NAME@V")
        check_name(self.app_name)
        if self.b is not None and not 0.0 < self.split < 1.0:
            raise InvalidInputError(f"--split must be between 0 and 1 (share of users on B), got {self.split}")
        for f, lo in (("per_client", 1), ("max_queue", 1), ("max_tokens_limit", 1), ("workers", 1),
                      ("max_body_bytes", 256), ("max_messages", 1)):
            if getattr(self, f) < lo:
                raise InvalidInputError(f"--{f.replace('_', '-')} must be at least {lo}")
        if self.timeout_s <= 0:
            raise InvalidInputError("--timeout must be positive (seconds)")
        if not 0 <= self.port < 65536:
            raise InvalidInputError(f"--port must be 0-65535, got {self.port}")

    @property
    def app_name(self) -> str:
        if self.name:
            return self.name
        ref = self.target.split(":", 1)[1] if self.target.startswith(("rag:", "chain:")) else self.target
        return ref.split("@", 1)[0].strip()

    @property
    def variants(self) -> dict[str, str]:
        return {"a": self.target} | ({"b": self.b} if self.b else {})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
