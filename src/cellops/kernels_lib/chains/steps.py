"""Step types: each takes (step, context, values, span) and returns the step's output.

Model steps go through ``calls.guarded_generate`` (the active guard policy and the response
cache apply, as for %%prompt), so their guard/generate spans nest under the step's span.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..calls import CallResult, guarded_generate
from ..errors import InvalidInputError
from ..models.base import GenParams, Message
from ..models.tasks import model_for
from ..registry import Registry
from .context import RunContext, StepStopped, as_text, preview, resolve
from .spec import StepSpec

StepFn = Callable[[StepSpec, RunContext, dict[str, Any], Any], Any]
step_types: Registry[StepFn] = Registry("chain step type", "chain_steps")


def where(step: StepSpec, key: str) -> str:
    return f"step '{step.name}', key '{key}'"


def _gen_params(step: StepSpec) -> dict[str, Any]:
    return {k: v for k, v in (step.options.get("params") or {}).items() if k != "model"}


def model_call(step: StepSpec, ctx: RunContext, uri: str, messages: list[Message], gp: GenParams,
               span: Any, context: list[str] | None = None, input_text: str | None = None) -> CallResult:
    """One guarded (cached) model call inside the step's span; a guard block stops the chain."""
    from ..guard import active_policy

    result = guarded_generate(ctx.llm(uri), messages, gp, trace=ctx.trace, policy=active_policy(ctx.ws),
                              context=context, input_text=input_text)
    g = result.generation
    # token counts stay on the nested generate span only: a trace's totals sum every span
    span.attrs.update({"gen_ai.request.model": uri, "input.value": preview(messages[-1]["content"]),
                       "cellops.completion_tokens": g.completion_tokens if g is not None else 0})
    if result.blocked:
        raise StepStopped(step.name, result.text)
    return result


@step_types.register("prompt")
def run_prompt(step: StepSpec, ctx: RunContext, values: dict[str, Any], span: Any) -> str:
    from ..prompts import store
    from ..prompts.run import resolve_call

    prompt = store.get(step.arg, ctx.ws)
    variables = dict(values["inputs"]) | resolve(step.options.get("vars") or {}, values, where(step, "vars"))
    messages, uri, gp = resolve_call(prompt, variables, ctx.model_for(step.options), _gen_params(step))
    span.attrs["cellops.prompt"] = prompt.ref
    return model_call(step, ctx, uri, messages, gp, span).text


@step_types.register("generate")
def run_generate(step: StepSpec, ctx: RunContext, values: dict[str, Any], span: Any) -> str:
    user = as_text(resolve(step.arg, values, where(step, "generate")))
    messages: list[Message] = []
    if step.options.get("system"):
        messages.append({"role": "system",
                         "content": as_text(resolve(step.options["system"], values, where(step, "system")))})
    messages.append({"role": "user", "content": user})
    uri = model_for("prompt", ctx.model_for(step.options))
    return model_call(step, ctx, uri, messages, GenParams.from_dict(_gen_params(step)), span).text


@step_types.register("rag")
def run_rag(step: StepSpec, ctx: RunContext, values: dict[str, Any], span: Any) -> Any:
    from ..rag.retrieve import search_many
    from ..rag.store import open_index

    query = as_text(resolve(step.options["query"], values, where(step, "query"))).strip()
    if not query:
        raise InvalidInputError(f"{where(step, 'query')}: the query rendered empty")
    index = open_index(step.arg, ctx.ws)
    k, mode = int(step.options.get("k", 4)), step.options.get("search", "dense")
    span.attrs.update({"cellops.index": index.ref, "cellops.k": k, "cellops.search": mode,
                       "input.value": preview(query)})
    if step.options.get("mode", "retrieve") == "retrieve":
        hits = search_many(index, [query], k, mode)[0]
        span.add_event("retrieved", chunks=[h.chunk.id for h in hits], scores=[round(h.score, 4) for h in hits])
        return [h.to_dict() for h in hits]
    with ctx.trace.span("retrieve", kind="retriever", **{"cellops.index": index.ref, "cellops.k": k}) as child:
        hits = search_many(index, [query], k, mode)[0]
        child.add_event("retrieved", chunks=[h.chunk.id for h in hits], scores=[round(h.score, 4) for h in hits])
    return _rag_answer(step, ctx, query, hits, span)


def _rag_answer(step: StepSpec, ctx: RunContext, question: str, hits: list[Any], span: Any) -> str:
    """ask mode: the same retrieval rail, prompt and guarded call as ``rag.ask``."""
    from ..guard import active_policy
    from ..prompts import store
    from ..prompts.run import resolve_call
    from ..rag.answer import _retrieval_rail, cite, default_prompt

    hits, texts, _ = _retrieval_rail(active_policy(ctx.ws), hits, ctx.trace)
    p = store.get(step.options["prompt"], ctx.ws) if step.options.get("prompt") else default_prompt(ctx.ws)
    passages = [{"n": i + 1, "source": h.source, "text": t} for i, (h, t) in enumerate(zip(hits, texts, strict=True))]
    context = "\n".join(f"[{x['n']}] {x['text']}" for x in passages)
    messages, uri, gp = resolve_call(p, {"question": question, "passages": passages, "context": context},
                                     ctx.model_for(step.options), _gen_params(step))
    result = model_call(step, ctx, uri, messages, gp, span, context=texts, input_text=question)
    span.attrs["cellops.citations"] = [c.n for c in cite(result.text, hits)]
    return result.text


@step_types.register("guard")
def run_guard(step: StepSpec, ctx: RunContext, values: dict[str, Any], span: Any) -> str:
    from ..guard import load

    text = as_text(resolve(step.options["input"], values, where(step, "input")))
    policy = load(step.arg, ctx.ws)
    rail = step.options.get("rail", "input")
    rep = policy.check_input(text) if rail == "input" else policy.check_output(text)
    span.attrs.update({"guard.policy": policy.ref, "guard.rail": rail, "guard.allowed": rep.allowed,
                       "guard.redacted": rep.redacted, "input.value": preview(text)})
    span.add_event("guard.verdict", policy=policy.ref, rail=rail, allowed=rep.allowed, reason=rep.reason,
                   checks=[f.check for f in rep.triggered])
    if rep.allowed:
        return rep.text
    blocked = f"[blocked by guard policy {policy.ref} ({rail}): {rep.reason}]"
    if step.options.get("action", "block") == "block":
        raise StepStopped(step.name, blocked)
    return blocked  # action: redact: the value is replaced and the chain goes on


@step_types.register("python")
def run_python(step: StepSpec, ctx: RunContext, values: dict[str, Any], span: Any) -> Any:
    fn = ctx.resolver(step.arg)
    kwargs = resolve(step.options.get("args") or {}, values, where(step, "args"))
    span.attrs.update({"cellops.function": step.arg, "input.value": preview(kwargs)})
    return fn(**kwargs)


@step_types.register("tool")
def run_tool(step: StepSpec, ctx: RunContext, values: dict[str, Any], span: Any) -> Any:
    from .tools import run_tool_step

    return run_tool_step(step, ctx, values, span)


@step_types.register("map")
def run_map(step: StepSpec, ctx: RunContext, values: dict[str, Any], span: Any) -> list[Any]:
    items = resolve(step.arg, values, where(step, "map"))
    if not isinstance(items, list | tuple):
        raise InvalidInputError(f"{where(step, 'map')}: needs a list, got {type(items).__name__} "
                                f"{preview(items, 60)!r}; write map: \"{{{{ steps.NAME.output }}}}\"")
    sub, var = step.sub, step.options.get("as", "item")
    assert sub is not None  # the spec parser always sets it for map
    run_sub = step_types.get(sub.type)
    out = []
    span.attrs["cellops.items"] = len(items)
    for i, item in enumerate(items):
        with ctx.trace.span(f"{step.name}[{i}]", kind=sub.kind, **{"cellops.step.type": sub.type}) as child:
            out.append(run_sub(sub, ctx, values | {var: item, "index": i}, child))
            child.attrs["output.value"] = preview(out[-1])
    return out
