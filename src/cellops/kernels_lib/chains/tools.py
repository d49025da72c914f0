"""The ``tool`` step: a model is given python functions as OpenAI tool schemas, and the call it
makes runs the function. The output is the function's return value (a list when the model made
several calls), or the model's message when it chose to answer without a call.

Schemas come from each function's signature (type hints -> JSON schema types, defaults -> not
required) and docstring. Backends without ``chat_tools`` fail with one line naming the model.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

from ..errors import ModelError
from ..models.base import GenParams, Message
from ..models.tasks import model_for
from ..tracking import genai
from .context import RunContext, as_text, preview, resolve
from .spec import StepSpec

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
               dict: "object", tuple: "array"}


def _json_type(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint) or hint
    if origin in _JSON_TYPES:
        out: dict[str, Any] = {"type": _JSON_TYPES[origin]}
        args = typing.get_args(hint)
        if origin in (list, tuple) and args and args[0] in _JSON_TYPES:
            out["items"] = {"type": _JSON_TYPES[args[0]]}
        return out
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    return {}  # unknown or no hint: any JSON value


def tool_schema(name: str, fn: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI ``{"type": "function", "function": {...}}`` schema of ``fn``."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: fall back to untyped parameters
        hints = {}
    props: dict[str, Any] = {}
    required = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        props[p.name] = _json_type(hints.get(p.name))
        if p.default is p.empty:
            required.append(p.name)
    doc = inspect.getdoc(fn) or f"the function {name}"
    return {"type": "function", "function": {
        "name": name, "description": doc.split("\n\n")[0].strip(),
        "parameters": {"type": "object", "properties": props, "required": required}}}


def run_tool_step(step: StepSpec, ctx: RunContext, values: dict[str, Any], span: Any) -> Any:
    from ..models import get_llm
    from ..models.tools import choice_for

    refs = [step.arg] if isinstance(step.arg, str) else list(step.arg)
    fns = {ref.rpartition(":")[2].rpartition(".")[2]: ctx.resolver(ref) for ref in refs}
    tools = [tool_schema(n, f) for n, f in fns.items()]
    messages: list[Message] = []
    if step.options.get("system"):
        messages.append({"role": "system", "content": as_text(
            resolve(step.options["system"], values, f"step '{step.name}', key 'system'"))})
    messages.append({"role": "user", "content": as_text(
        resolve(step.options["input"], values, f"step '{step.name}', key 'input'"))})
    uri = model_for("prompt", ctx.model_for(step.options))
    llm = get_llm(uri, ctx.ws)
    chat = getattr(llm, "chat_tools", None)
    if chat is None:
        raise ModelError(f"step '{step.name}': model {uri} cannot call tools; use default, a llamacpp: "
                         "ChatML model or an openai: endpoint that supports tools")
    choice = step.options.get("tool_choice", "auto")
    if choice not in ("auto", "none", "required") and choice not in fns:
        raise ModelError(f"step '{step.name}', key 'tool_choice': '{choice}' is not one of its tools "
                         f"({', '.join(fns)}); use auto, required, none or a tool name")
    gp = GenParams.from_dict({k: v for k, v in (step.options.get("params") or {}).items() if k != "model"})
    span.attrs.update({"gen_ai.request.model": uri, "cellops.tools": list(fns), "cellops.tool_choice": choice,
                       "input.value": preview(messages[-1]["content"])})
    with ctx.trace.span("chat_tools", kind="llm", **genai.llm_request(uri, gp, messages),
                        **{"cellops.tools": list(fns)}) as call_span:
        try:
            reply = chat(messages, tools, choice_for(choice, list(fns)), gp)
        except (RuntimeError, ValueError) as e:
            raise ModelError(f"step '{step.name}': model {uri} failed on the tool call: {e}") from e
        call_span.attrs.update({"gen_ai.usage.input_tokens": reply.prompt_tokens,
                                "gen_ai.usage.output_tokens": reply.completion_tokens,
                                "output.value": preview(reply.text or [c.__dict__ for c in reply.calls])})
    span.attrs["cellops.tool_calls"] = len(reply.calls)
    if not reply.calls:
        return reply.text
    results = [_run_call(step, ctx, fns, c.name, c.arguments, span) for c in reply.calls]
    return results[0] if len(results) == 1 else results


def _run_call(step: StepSpec, ctx: RunContext, fns: dict[str, Callable[..., Any]], name: str,
              arguments: str, span: Any) -> Any:
    if name not in fns:
        raise ModelError(f"step '{step.name}': the model called '{name}', which is not one of its tools "
                         f"({', '.join(fns)})")
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError as e:
        raise ModelError(f"step '{step.name}': the model's arguments for {name} are not JSON "
                         f"({e.msg}): {arguments[:120]!r}") from None
    if not isinstance(args, dict):
        raise ModelError(f"step '{step.name}': the model's arguments for {name} are not an object: {arguments[:120]!r}")
    span.add_event("tool_call", tool=name, arguments=preview(args))
    with ctx.trace.span(name, kind="tool", **{"input.value": preview(args)}) as tool_span:
        result = fns[name](**args)
        tool_span.attrs["output.value"] = preview(result)
    return result
