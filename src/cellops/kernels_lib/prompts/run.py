"""Running a prompt version: render -> guarded generate -> record (workspace + W&B)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import html
from ..calls import CallResult, guarded_generate
from ..guard import active_policy
from ..models import Generation, GenParams, OnToken, get_llm
from ..models.tasks import model_for
from ..tracking import Trace, genai, traces, tracker, tracker_run, waterfall
from ..workspace import Workspace, get_workspace
from . import store
from . import template as tpl
from .cache import CachedLLM, CacheStats

GEN_KEYS = set(GenParams.__dataclass_fields__)


@dataclass
class PromptRun:
    """The result of one prompt run; ``.text`` is what the user sees."""

    text: str
    prompt: store.Prompt
    model: str
    run_id: str
    messages: list[dict[str, str]]
    params: dict[str, Any]
    generation: Generation | None
    trace: list[dict[str, Any]] = field(default_factory=list)
    guard: dict[str, Any] = field(default_factory=dict)
    blocked: str | None = None
    cached: bool = False  # the answer came from the workspace response cache
    trace_id: str | None = None
    spans: Any = field(default=None, repr=False)  # the Trace, for the folded waterfall

    @property
    def version(self) -> str:
        return self.prompt.ref

    def __str__(self) -> str:
        return self.text

    def _meta(self) -> str:
        g = self.generation
        cost = f" · {g.completion_tokens} tokens · {g.latency_s:.2f}s" if g else ""
        cost += " · cached" if self.cached else ""
        return f"{self.prompt.ref} · {self.model}{cost} · run {self.run_id}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        body = html.pre(self.text)
        for rail, rep in self.guard.items():
            rep_html = getattr(rep, "_repr_html_", None)
            if rep_html is not None:
                body += f"<details {'open' if self.blocked else ''}><summary>guard: {html.esc(rail)}</summary>{rep_html()}</details>"
        return {"text/plain": f"{self.text}\n[{self._meta()}]",
                "text/html": html.box("prompt run", body + waterfall.details(self.spans), self._meta())}


def resolve_call(prompt: store.Prompt, variables: dict[str, Any], model: str | None,
                 params: dict[str, Any] | None, history: list[dict[str, str]] | None = None,
                 ) -> tuple[list[dict[str, str]], str, GenParams]:
    """Render a prompt version with ``variables`` -> (messages, model URI, generation params).

    ``history`` (earlier user/assistant turns of a conversation, e.g. a served chat) goes
    between the system prompt and the rendered template."""
    stored = dict(prompt.params)
    model_uri = model or stored.pop("model", None) or model_for("prompt")
    stored.pop("model", None)
    gp = GenParams.from_dict({**{k: v for k, v in stored.items() if k in GEN_KEYS}, **(params or {})})
    messages = []
    if prompt.system:
        messages.append({"role": "system", "content": tpl.render(prompt.system, variables, f"{prompt.ref} system")})
    messages += [dict(m) for m in history or []]
    messages.append({"role": "user", "content": tpl.render(prompt.template, variables, prompt.ref)})
    return messages, model_uri, gp


@dataclass
class Call:
    """One rendered, guarded (and possibly cached) model call, before it is recorded."""

    result: CallResult
    model_uri: str
    weights_hash: str
    params: GenParams
    trace: Trace
    policy: Any
    cached: bool


def call(
    prompt: store.Prompt, variables: dict[str, Any], *, model: str | None = None,
    params: dict[str, Any] | None = None, on_token: OnToken | None = None,
    workspace: Workspace | None = None, cache: bool = True, stats: CacheStats | None = None,
    history: list[dict[str, str]] | None = None, policy: Any = "active",
    on_trace: Callable[[Trace], None] | None = None,
) -> Call:
    """render -> load model -> guarded generate (through the response cache unless ``cache=False``).

    ``policy``: "active" (the workspace's ``%guard on`` policy), a loaded policy, or None (off).
    ``on_trace(trace)`` is called before rendering (a live view subscribes to it there)."""
    ws = workspace or get_workspace()
    trace = Trace(f"prompt {prompt.ref}", **{"cellops.prompt": prompt.ref})
    if on_trace is not None:
        on_trace(trace)
    try:
        return _call(trace, prompt, variables, model, params, on_token, ws, cache, stats, history, policy)
    except BaseException as e:  # a failed or interrupted run keeps its trace: status error, the exception
        trace.end_span(trace.root, e)
        try:
            traces.save(ws, trace)
        except Exception as save_error:  # the call's own error is the one to raise
            logging.getLogger(__name__).warning("prompt %s: its error trace was not saved (%s)",
                                                prompt.ref, save_error)
        raise


def _call(trace: Trace, prompt: store.Prompt, variables: dict[str, Any], model: str | None,
          params: dict[str, Any] | None, on_token: OnToken | None, ws: Workspace, cache: bool,
          stats: CacheStats | None, history: list[dict[str, str]] | None, policy: Any) -> Call:
    with trace.span("render"):
        messages, model_uri, gp = resolve_call(prompt, dict(variables or {}), model, params, history)
    if isinstance(policy, str) and policy == "active":
        policy = active_policy(ws)  # a broken policy fails before a model is loaded
    with trace.span("load_model", **{"gen_ai.request.model": model_uri}):
        llm = CachedLLM(get_llm(model_uri, ws), ws, stats, enabled=cache)
    result = guarded_generate(llm, messages, gp, trace=trace, on_token=on_token, policy=policy)
    gen = result.generation
    return Call(result, model_uri, llm.weights_hash(), gp, trace, policy,
                bool(gen is not None and gen.meta.get("cached")))


def run(
    ref: str | store.Prompt, variables: dict[str, Any] | None = None, *, model: str | None = None,
    params: dict[str, Any] | None = None, on_token: OnToken | None = None,
    workspace: Workspace | None = None, source: str = "python", cache: bool = True,
    history: list[dict[str, str]] | None = None, policy: Any = "active",
    on_trace: Callable[[Trace], None] | None = None,
) -> PromptRun:
    """Run prompt ``ref`` (``NAME``, ``NAME@3``, ``NAME@prod`` or a Prompt) and record the run.

    ``cache=False`` (``--no-cache``) always calls the model; the answer still refreshes the cache.
    ``on_trace(trace)`` is called with the run's Trace before any work (see ``call``).
    """
    ws = workspace or get_workspace()
    prompt = ref if isinstance(ref, store.Prompt) else store.get(ref, ws)
    c = call(prompt, dict(variables or {}), model=model, params=params, on_token=on_token,
             workspace=ws, cache=cache, history=history, policy=policy, on_trace=on_trace)
    return _record(ws, prompt, c, variables, source)


def save_and_run(
    name: str, template: str, variables: dict[str, Any] | None = None, *, system: str | None = None,
    params: dict[str, Any] | None = None, tests: list[dict[str, Any]] | None = None,
    model: str | None = None, run: bool = True, on_token: OnToken | None = None,
    workspace: Workspace | None = None, source: str = "python", cache: bool = True,
    on_trace: Callable[[Trace], None] | None = None,
) -> tuple[store.Prompt, bool, PromptRun | None]:
    """Save a prompt version and run it, saving only once everything has worked: parameters
    parsed, model resolved, template rendered and the model called. A failure (unknown or
    unreachable model, bad parameter, undefined variable) leaves no new version behind.
    ``model`` overrides the prompt's own. Returns (prompt, created, run); ``run=False`` checks the
    parameters, saves and returns no run; ``on_trace`` as in ``run``.
    """
    ws = workspace or get_workspace()
    GenParams.from_dict({k: v for k, v in (params or {}).items() if k != "model"})
    if not run:
        return (*store.save(name, template, system, params, tests, ws), None)
    draft = store.pending(name, template, system, params, tests, ws)
    c = call(draft, dict(variables or {}), model=model, on_token=on_token, workspace=ws, cache=cache,
             on_trace=on_trace)
    prompt, created = store.save(name, template, system, params, tests, ws)
    return prompt, created, _record(ws, prompt, c, variables, source)


def _record(ws: Workspace, prompt: store.Prompt, c: Call, variables: dict[str, Any] | None,
            source: str) -> PromptRun:
    """Record a finished call as a run of ``prompt`` (workspace, trace, tracker)."""
    result, gen, gp, model_uri = c.result, c.result.generation, c.params, c.model_uri
    record = {
        "source": source, "prompt": prompt.ref, "prompt_hash": prompt.hash,
        "messages": result.messages, "model": model_uri, "weights_hash": c.weights_hash,
        "params": gp.to_dict(), "variables": _recorded_variables(variables, result.reports),
        "output": result.text, "blocked": result.blocked,
        "prompt_tokens": gen.prompt_tokens if gen else 0,
        "completion_tokens": gen.completion_tokens if gen else 0,
        "latency_s": gen.latency_s if gen else 0.0, "ttft_s": gen.ttft_s if gen else None,
        "trace": c.trace.to_list(), "trace_id": c.trace.trace_id,
        "guard": {k: _report_dict(v) for k, v in result.reports.items()},
        "guard_policy": getattr(c.policy, "ref", None), **tracker_run(ws.root), "cached": c.cached,
    }
    run_id = ws.record_run("prompt", record, prompt.name, prompt.version,
                           status="blocked" if result.blocked else "ok")
    c.trace.root.attrs["output.value"] = genai.clip(result.text)
    traces.save(ws, c.trace, run_id)
    tracker.log({f"prompt/{k}": record[k] for k in
                 ("prompt", "model", "prompt_tokens", "completion_tokens", "latency_s", "cached")}
                | {"prompt/run_id": run_id, "prompt/output": result.text})
    return PromptRun(result.text, prompt, model_uri, run_id, result.messages, gp.to_dict(), gen,
                     record["trace"], result.reports, result.blocked, c.cached, c.trace.trace_id, c.trace)


def _recorded_variables(variables: dict[str, Any] | None, reports: dict[str, Any]) -> dict[str, str]:
    """Variables as recorded: what the guard redacted for the model is redacted here too."""
    placeholders = getattr(reports.get("input"), "placeholders", None) or {}
    out = {}
    for k, v in (variables or {}).items():
        text = repr(v)
        for placeholder, original in placeholders.items():
            text = text.replace(original, placeholder)
        out[k] = text[:500]
    return out


def _report_dict(report: Any) -> Any:
    to_dict = getattr(report, "to_dict", None)
    return to_dict() if to_dict is not None else repr(report)
