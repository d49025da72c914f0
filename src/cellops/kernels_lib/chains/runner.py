"""Running a chain version: check inputs, resolve everything it names, run the steps in order.

One run is one trace: a root span ``chain NAME@V`` of kind ``chain`` (OpenInference-like) and one child per step with the step's kind
(llm for prompt/generate, retriever for rag, guard, tool, step for python/map); calls a step makes
(guard rails, generate, the tool's function) nest under it. The run is recorded as a ``chain`` run
that names the trace. A step that raises stops the chain: its span holds the traceback and the
error names the step; a guard that blocks stops it with status ``blocked`` (no exception).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import CellopsError, InvalidInputError
from ..tracking import Trace, traces
from ..workspace import Workspace, get_workspace
from . import store
from .context import Resolver, RunContext, StepStopped, import_resolver, preview, resolve
from .result import ChainRun, ChainStepError, StepResult
from .spec import ChainSpec, StepSpec
from .steps import step_types

_FALSE_TEXT = {"", "false", "0", "no", "none", "off"}


def check_inputs(chain: store.Chain, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """The inputs with defaults filled in; a missing or unknown one is one line."""
    spec, given = chain.spec, dict(inputs or {})
    missing = [n for n in spec.required if n not in given]
    if missing:
        raise InvalidInputError(f"chain {chain.ref} needs input(s) {', '.join(missing)}: pass "
                                + " ".join(f"-p {n}=..." for n in missing) + " (inputs={...} from Python)")
    if spec.inputs:
        unknown = sorted(set(given) - set(spec.inputs))
        if unknown:
            raise InvalidInputError(f"chain {chain.ref} has no input '{unknown[0]}'; its inputs: "
                                    + ", ".join(spec.inputs))
        return {k: v for k, v in spec.inputs.items() if v is not None} | given
    return given


def preflight(chain: store.Chain, ws: Workspace, resolver: Resolver) -> None:
    """Resolve every prompt, index, policy and function the chain names, before any step runs."""
    for step in _all_steps(chain.spec):
        try:
            _resolve_names(step, ws, resolver)
        except CellopsError as e:
            raise type(e)(f"chain {chain.ref}, step '{step.name}', key '{step.type}': {e}") from None


def _all_steps(spec: ChainSpec) -> list[StepSpec]:
    return [x for s in spec.steps for x in ([s, s.sub] if s.sub is not None else [s])]


def _resolve_names(step: StepSpec, ws: Workspace, resolver: Resolver) -> None:
    if step.type == "prompt":
        from ..prompts import store as prompt_store

        prompt_store.get(step.arg, ws)
    elif step.type == "rag":
        from ..rag.store import KIND

        ws.resolve(KIND, step.arg)
        if step.options.get("prompt"):
            from ..prompts import store as prompt_store

            prompt_store.get(step.options["prompt"], ws)
    elif step.type == "guard":
        from ..guard import load

        load(step.arg, ws)
    elif step.type in ("python", "tool"):
        for ref in [step.arg] if isinstance(step.arg, str) else step.arg:
            resolver(ref)


def _when(step: StepSpec, values: dict[str, Any]) -> bool:
    if step.when is None:
        return True
    source = step.when if "{{" in step.when else "{{ " + step.when + " }}"
    got = resolve(source, values, f"step '{step.name}', key 'when'")
    return got.strip().lower() not in _FALSE_TEXT if isinstance(got, str) else bool(got)


def run(
    ref: str | store.Chain, inputs: dict[str, Any] | None = None, model: str | None = None, *,
    workspace: Workspace | None = None, resolver: Resolver | None = None, cache: bool = True,
    stats: Any = None, source: str = "python", record: bool = True,
    on_trace: Callable[[Trace], None] | None = None,
) -> ChainRun:
    """Run chain ``ref`` (``NAME``, ``NAME@V``, ``NAME@alias``) on ``inputs``; recorded as a chain run.

    ``model`` replaces the model of every model step that does not name its own. ``resolver``
    turns a python step's function name into a callable (default: ``module:function`` imports).
    ``on_trace(trace)`` is called before the first step (a live view subscribes to it there).
    Raises ChainStepError naming the step when a step raises.
    """
    ws = workspace or get_workspace()
    chain = ref if isinstance(ref, store.Chain) else store.get(ref, ws)
    store.refuse_foreign_imports(chain, ws)
    given = check_inputs(chain, inputs)
    resolver = resolver or import_resolver
    preflight(chain, ws, resolver)
    t0 = time.perf_counter()
    trace = Trace(f"chain {chain.ref}", kind="chain", **{"cellops.chain": chain.ref, "cellops.chain_hash": chain.hash,
                                              "input.value": preview(given)})
    if on_trace is not None:
        on_trace(trace)
    ctx = RunContext(ws, trace, model, chain.spec.model, resolver, cache, stats)
    values: dict[str, Any] = {"inputs": given, "steps": {}}
    results: list[StepResult] = []
    status, stopped, failure, output = "ok", None, None, None
    with trace:
        for step in chain.spec.steps:
            res = _run_step(step, ctx, values)
            results.append(res)
            values["steps"][step.name] = {"output": res.output, "skipped": res.status == "skipped"}
            if res.status in ("blocked", "error"):
                status, stopped = res.status, step.name
                failure = res.exception
                output = res.output if res.status == "blocked" else None
                break
        if status == "ok":
            output, failure = _output(chain, values, results)
            status = "error" if failure is not None else "ok"
        trace.root.attrs["output.value"] = preview(output)
        trace.end("error" if status == "error" else None)
    result = ChainRun(chain.ref, output, results, trace.trace_id, None, status, given, model,
                      time.perf_counter() - t0, stopped, trace)
    if record:
        result.run_id = _record(ws, chain, result, source)
    traces.save(ws, trace, result.run_id)
    if failure is not None:
        raise ChainStepError(_failure_line(chain, result, failure), result) from failure
    return result


def _run_step(step: StepSpec, ctx: RunContext, values: dict[str, Any]) -> StepResult:
    res = StepResult(step.name, step.type, step.kind, "ok")
    t0 = time.perf_counter()
    try:
        with ctx.trace.span(step.name, kind=step.kind,
                            **{"cellops.step.type": step.type, "cellops.step": step.label}) as span:
            if not _when(step, values):
                res.status = "skipped"
                span.attrs["cellops.skipped"] = True
                return res
            try:
                res.output = step_types.get(step.type)(step, ctx, values, span)
            except StepStopped as e:
                res.status, res.output = "blocked", e.text
                span.attrs["cellops.blocked"] = e.text
                span.status = "error"
            span.attrs["output.value"] = preview(res.output)
            res.tokens = int(span.attrs.get("cellops.completion_tokens") or 0)
    except Exception as e:  # the span has recorded it (status error, traceback event)
        res.status, res.error, res.exception = "error", _error_text(e), e
    finally:
        res.latency_s = time.perf_counter() - t0
    return res


def _output(chain: store.Chain, values: dict[str, Any],
            results: list[StepResult]) -> tuple[Any, Exception | None]:
    if chain.spec.output is None:
        ran = [r for r in results if r.status != "skipped"]
        return (ran[-1].output if ran else None), None
    try:
        return resolve(chain.spec.output, values, f"chain {chain.ref}, key 'output'"), None
    except CellopsError as e:
        return None, e


def _error_text(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return msg if isinstance(e, CellopsError) else f"{type(e).__name__}: {msg}"


def _failure_line(chain: store.Chain, result: ChainRun, e: Exception) -> str:
    if result.stopped_at is None:
        return f"{_error_text(e)} (trace {result.trace_id})"
    step = chain.spec.step(result.stopped_at)
    return (f"chain {chain.ref} stopped at step '{step.name}' ({step.label}): {_error_text(e)}; "
            f"the traceback is in its span (trace {result.trace_id})")


def _record(ws: Workspace, chain: store.Chain, result: ChainRun, source: str) -> str:
    record = {
        "source": source, "chain": chain.ref, "chain_hash": chain.hash, "model": result.model,
        "inputs": {k: preview(v, 1000) for k, v in result.inputs.items()},
        "output": preview(result.output), "steps": [r.to_dict() for r in result.results],
        "stopped_at": result.stopped_at, "trace_id": result.trace_id, "wall_s": round(result.wall_s, 4),
    }
    return ws.record_run("chain", record, chain.name, chain.version, status=result.status)
