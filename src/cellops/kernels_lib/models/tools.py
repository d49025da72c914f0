"""OpenAI-style function calling: a model is given tool schemas and answers with tool calls.

Backends that can do it have ``chat_tools(messages, tools, tool_choice, params) -> ToolReply``:
``openai:`` endpoints that accept ``tools`` (vLLM, NIM, OpenAI, llama.cpp's server with a
function-calling chat format) and llama.cpp models through llama-cpp-python's
``chatml-function-calling`` handler (ChatML models such as the embedded SmolLM2). There a forced
``tool_choice`` (one named function) constrains the arguments with a grammar built from the
function's JSON schema, so even a 135M model returns valid, typed arguments; ``auto`` lets the
model choose between a message and a call (also grammar-constrained).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ToolChoice = str | dict[str, Any]  # "auto" | "none" | "required" | {"type": "function", ...}


@dataclass
class ToolCall:
    name: str
    arguments: str  # JSON text as the model wrote it
    id: str = ""

    def parsed(self) -> Any:
        return json.loads(self.arguments or "{}")


@dataclass
class ToolReply:
    text: str  # the message content when the model answered without a call
    calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


def choice_for(tool_choice: str, names: list[str]) -> ToolChoice:
    """A step's ``tool_choice`` (auto, required, none or a function name) as the API value."""
    if tool_choice in ("auto", "none", "required"):
        if tool_choice == "required" and len(names) == 1:
            return forced(names[0])
        return tool_choice
    return forced(tool_choice)


def forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def reply_from_message(choice: dict[str, Any], usage: dict[str, Any] | None, latency_s: float) -> ToolReply:
    """An OpenAI chat completion choice -> ToolReply (the same shape llama-cpp-python returns)."""
    msg = choice.get("message") or {}
    calls = [ToolCall(c["function"]["name"], c["function"].get("arguments") or "{}", c.get("id", ""))
             for c in msg.get("tool_calls") or [] if c.get("function")]
    if not calls and msg.get("function_call"):  # the legacy shape some servers still send
        fc = msg["function_call"]
        calls = [ToolCall(fc["name"], fc.get("arguments") or "{}")]
    u = usage or {}
    return ToolReply(msg.get("content") or "", calls, int(u.get("prompt_tokens") or 0),
                     int(u.get("completion_tokens") or 0), latency_s)
