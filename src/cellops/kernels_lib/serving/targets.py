"""What a served request runs: a prompt version, a RAG app or a chain, through the same call path
a notebook cell uses (prompts.run.run, rag.answer.ask, chains.run): only the front door differs.

Each kind is a factory in ``TARGETS`` (a Registry, so a plugin can add one):
``factory(ref, options) -> Target``. A Target is resolved once when the server starts (the
version is pinned: ``NAME`` becomes ``NAME@3`` for the whole life of the server) and answers one
:class:`Turns` at a time with an :class:`Outcome`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import chains
from ..chains.store import refuse_foreign_imports
from ..errors import InvalidInputError
from ..models import OnToken, get_llm
from ..registry import Registry
from ..workspace import Workspace


@dataclass(frozen=True)
class Turns:
    """One chat request, mapped: the last user message, earlier turns, extra template variables."""

    last_user: str
    history: list[dict[str, str]]
    variables: dict[str, Any]
    params: dict[str, Any]  # max_tokens, temperature, top_p, stop, seed (only those given)


@dataclass
class Outcome:
    text: str  # what the client receives (redacted / blocked text when the guard says so)
    input_text: str  # the user's message as recorded (redacted when the input rail redacted it)
    model: str
    versions: dict[str, Any]  # target version, content hashes, weights hash, guard policy
    run_id: str | None = None
    trace_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    finish_reason: str = "stop"
    blocked: str | None = None
    guard: dict[str, Any] = field(default_factory=dict)  # rail -> {allowed, reason, findings}
    citations: list[dict[str, Any]] | None = None


class Target(Protocol):
    kind: str
    ref: str  # pinned NAME@V
    model_uri: str

    def warm(self) -> bool: ...  # load what the first request needs; True if calls may run in parallel

    def answer(self, turns: Turns, on_token: OnToken | None) -> Outcome: ...


@dataclass(frozen=True)
class Options:
    workspace: Workspace
    model: str | None = None
    policy: Any = "active"  # "active", a loaded policy, or None
    input_var: str | None = None
    rag_prompt: str | None = None
    cache: bool = False


TARGETS: Registry[Callable[[str, Options], Target]] = Registry("serve target", "serve_targets")


def parse(spec: str, options: Options) -> Target:
    """``NAME@V`` (a prompt) or ``KIND:REF`` for another registered kind (rag:, chain:)."""
    kind, sep, ref = spec.partition(":")
    if not sep:
        kind, ref = "prompt", spec
    if not ref.strip():
        raise InvalidInputError(f"target '{spec}' names nothing after '{kind}:'")
    return TARGETS.get(kind)(ref.strip(), options)


def _verdicts(reports: dict[str, Any]) -> dict[str, Any]:
    """Guard reports -> small JSON verdicts (no matched text: the record stays redacted)."""
    out: dict[str, Any] = {}
    for rail, rep in reports.items():
        reps = rep if isinstance(rep, list) else [rep]
        out[rail] = [{"allowed": bool(getattr(r, "allowed", True)), "reason": getattr(r, "reason", "") or "",
                      "findings": len(getattr(r, "findings", []) or [])} for r in reps]
        if not isinstance(rep, list):
            out[rail] = out[rail][0]
    return out


def redact_input(text: str, reports: dict[str, Any]) -> str:
    """The user's text with what the input rail redacted replaced by its placeholders."""
    placeholders = getattr(reports.get("input"), "placeholders", None) or {}
    for ph, original in sorted(placeholders.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(original, ph)
    return text


def _policy_ref(policy: Any, ws: Workspace) -> str | None:
    if isinstance(policy, str) and policy == "active":
        from ..guard import ACTIVE_KEY

        return ws.get_state(ACTIVE_KEY)
    return getattr(policy, "ref", None)


class PromptTarget:
    kind = "prompt"

    def __init__(self, ref: str, opts: Options) -> None:
        from ..prompts import store
        from ..prompts import template as tpl
        from ..prompts.run import resolve_call

        self.opts = opts
        self.prompt = store.get(ref, opts.workspace)
        self.ref = self.prompt.ref
        free = tpl.variables(self.prompt.template) | (tpl.variables(self.prompt.system) if self.prompt.system else set())
        if opts.input_var:
            if opts.input_var not in free:
                raise InvalidInputError(f"--input-var {opts.input_var}: prompt {self.ref} has no such variable "
                                        f"(it reads {', '.join(sorted(free)) or 'none'})")
            self.input_var = opts.input_var
        elif len(free) == 1:
            self.input_var = next(iter(free))
        else:
            raise InvalidInputError(f"prompt {self.ref} reads {len(free)} variables ({', '.join(sorted(free)) or 'none'}); "
                                    "say which one the user's message fills with --input-var NAME")
        self.free = free
        self.model_uri = resolve_call(self.prompt, dict.fromkeys(free, ""), opts.model, None)[1]

    def warm(self) -> bool:
        return bool(get_llm(self.model_uri, self.opts.workspace).supports_concurrency)

    def answer(self, turns: Turns, on_token: OnToken | None) -> Outcome:
        from ..prompts.run import run

        variables = {**turns.variables, self.input_var: turns.last_user}
        r = run(self.prompt, variables, model=self.opts.model, params=turns.params, on_token=on_token,
                workspace=self.opts.workspace, source="serve", cache=self.opts.cache,
                history=turns.history, policy=self.opts.policy)
        g = r.generation
        versions = {"target": self.ref, "prompt_hash": self.prompt.hash, "model": r.model,
                    "guard_policy": _policy_ref(self.opts.policy, self.opts.workspace)}
        return Outcome(r.text, redact_input(turns.last_user, r.guard), r.model, versions, r.run_id,
                       getattr(r, "trace_id", None), g.prompt_tokens if g else 0,
                       g.completion_tokens if g else 0, g.ttft_s if g else None,
                       _finish(g, r.blocked), r.blocked, _verdicts(r.guard))


class RagTarget:
    kind = "rag"

    def __init__(self, ref: str, opts: Options) -> None:
        from ..rag.store import open_index

        self.opts = opts
        index = open_index(ref, opts.workspace)
        self.ref = index.ref
        self.model_uri = opts.model or "default"
        if opts.rag_prompt:
            from ..prompts import store

            self.prompt_ref: str | None = store.get(opts.rag_prompt, opts.workspace).ref
        else:
            self.prompt_ref = None

    def warm(self) -> bool:
        return bool(get_llm(self.model_uri, self.opts.workspace).supports_concurrency)

    def answer(self, turns: Turns, on_token: OnToken | None) -> Outcome:
        from ..rag.answer import ask

        a = ask(self.ref, turns.last_user, model=self.model_uri, prompt=self.prompt_ref,
                params=turns.params or None, on_token=on_token, workspace=self.opts.workspace,
                source="serve", policy=self.opts.policy)
        g = a.generation
        versions = {"target": f"rag:{self.ref}", "prompt": a.prompt, "model": a.model,
                    "guard_policy": _policy_ref(self.opts.policy, self.opts.workspace)}
        cites = [c.to_dict() | {"text": c.text[:300]} for c in a.citations]
        return Outcome(a.text, redact_input(turns.last_user, a.guard), a.model, versions, a.run_id,
                       getattr(a, "trace_id", None), g.prompt_tokens if g else 0,
                       g.completion_tokens if g else 0, g.ttft_s if g else None,
                       _finish(g, a.blocked), a.blocked, _verdicts(a.guard), cites)


def _finish(gen: Any, blocked: str | None) -> str:
    if blocked:
        return "content_filter"
    return "length" if gen is not None and gen.finish_reason == "length" else "stop"


TARGETS.register("prompt", PromptTarget)
TARGETS.register("rag", RagTarget)


class ChainTarget:
    """``chain:NAME@V``: the last user message fills the chain's one input without a default
    (or ``--input-var``); ``variables`` fill the others; earlier turns go to an input named
    ``history`` when the chain declares one. Chains do not stream: the output comes at the end."""

    kind = "chain"

    def __init__(self, ref: str, opts: Options) -> None:
        self.opts, self._chains = opts, chains
        self.chain = chains.get(ref, opts.workspace)
        refuse_foreign_imports(self.chain, opts.workspace)  # at start, not on the first request
        self.ref = self.chain.ref
        spec = self.chain.spec
        free = list(getattr(spec, "required", []) or [])
        declared = list(getattr(spec, "inputs", {}) or {})
        if opts.input_var:
            if declared and opts.input_var not in declared:
                raise InvalidInputError(f"--input-var {opts.input_var}: chain {self.ref} has inputs {', '.join(declared)}")
            self.input_var = opts.input_var
        elif len(free) == 1:
            self.input_var = free[0]
        else:
            raise InvalidInputError(f"chain {self.ref} needs {len(free)} inputs ({', '.join(free) or 'none'}); "
                                    "say which one the user's message fills with --input-var NAME")
        self.takes_history = "history" in declared
        self.model_uri = opts.model or "default"

    def warm(self) -> bool:
        return bool(get_llm(self.model_uri, self.opts.workspace).supports_concurrency)

    def answer(self, turns: Turns, on_token: OnToken | None) -> Outcome:
        ws = self.opts.workspace
        versions = {"target": f"chain:{self.ref}", "model": self.model_uri,
                    "guard_policy": _policy_ref(self.opts.policy, ws)}
        text_in, reports = turns.last_user, {}
        policy = self._policy()
        if policy is not None:  # the serve policy's input rail, as a prompt target applies it
            rep = policy.check_input(text_in)
            reports, text_in = {"input": rep}, rep.text  # the chain and the record see the redacted text
            if not rep.allowed:
                from ..calls import _blocked_text

                return Outcome(_blocked_text(policy, "input", rep), text_in, self.model_uri, versions,
                               finish_reason="content_filter", blocked="input", guard=_verdicts(reports))
        inputs = {**turns.variables, self.input_var: text_in}
        if self.takes_history:
            inputs["history"] = turns.history
        r = self._chains.run(self.chain, inputs, self.opts.model, workspace=self.opts.workspace, source="serve")
        text = r.output if isinstance(r.output, str) else json.dumps(r.output, default=str)
        if on_token is not None and text:
            on_token(text)
        versions["model"] = r.model or self.model_uri
        blocked = "chain" if r.status == "blocked" else None
        return Outcome(text, text_in, r.model or self.model_uri, versions, r.run_id, r.trace_id,
                       finish_reason="content_filter" if blocked else "stop", blocked=blocked,
                       guard=_verdicts(reports))

    def _policy(self) -> Any:
        """The serve policy: ``--guard NAME``, the workspace's active one, or none (``--guard off``)."""
        if isinstance(self.opts.policy, str) and self.opts.policy == "active":
            from ..guard import active_policy

            return active_policy(self.opts.workspace)
        return self.opts.policy


TARGETS.register("chain", ChainTarget)
