"""Chains: a pipeline .yaml runs a DAG of notebooks; recorded values feed later parameters.

```yaml
name: nightly                  # default: the file's stem
params: {base: default}        # chain parameters (cellops run pipeline.yaml -p base ...)
steps:
  finetune:
    notebook: finetune_eval.ipynb
    params: {model: ${params.base}}
  evaluate:
    notebook: rag_eval.ipynb
    needs: [finetune]          # implied by the reference below; listing it is optional
    params: {model: ${finetune.model_ref}}   # value recorded by finetune with record(...)
    timeout: 900
    retries: 1
  answer:
    chain: qa@prod             # a saved chain (cellops.chains) instead of a notebook: runs in
    inputs: {question: ${params.question}}   # this process; records output, trace_id, run_id
```
A run is one trace (``pipeline NAME``): a span per step, under which the notebook's own trace
(a span per cell, the kernel's spans under each) or the chain's trace nests.
A reference that is the whole value keeps its type; inside a longer string it is interpolated.
A failed step stops its dependants (recorded as skipped, naming the step that failed); steps that
do not depend on it still run. Everything is validated before the first step starts.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, NotFoundError
from ..tracking import Span, Trace, traces
from ..workspace import Workspace, get_workspace
from . import kernel, notebook
from .execute import run_notebook
from .result import KIND, PipelineRun

REF = re.compile(r"\$\{\s*([A-Za-z_][\w-]*)\.([A-Za-z_]\w*)\s*\}")
STEP_KEYS = {"notebook", "params", "needs", "timeout", "retries", "kernel"}
CHAIN_STEP_KEYS = {"chain", "inputs", "model", "needs"}  # a step that runs a saved chain


@dataclass
class Step:
    name: str
    notebook: Path | None  # None: a chain step
    params: dict[str, Any] = field(default_factory=dict)  # a chain step's inputs
    needs: list[str] = field(default_factory=list)
    timeout: float | None = None
    retries: int | None = None
    kernel: str | None = None
    chain: str | None = None  # NAME[@V] of a saved chain (cellops.chains)
    model: str | None = None  # the chain's model override


@dataclass
class Chain:
    name: str
    path: Path
    params: dict[str, Any]
    steps: dict[str, Step]  # in execution (topological) order


def load_chain(path: str | Path, overrides: dict[str, Any] | None = None) -> Chain:
    """Parse and validate a pipeline file (names, references, cycles, notebooks, parameters)."""
    import yaml

    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"pipeline file '{path}' not found")
    try:
        spec = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise InvalidInputError(f"{p.name} is not valid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(spec, dict) or not spec.get("steps"):
        raise InvalidInputError(f"{p.name} needs a 'steps:' mapping of step name -> {{notebook: ...}}")
    params = dict(spec.get("params") or {})
    for key, value in (overrides or {}).items():
        if key not in params:
            raise InvalidInputError(f"{p.name} has no chain parameter '{key}'; its params: "
                                    + (", ".join(params) or "(none)"))
        default = params[key]
        typ = notebook._type_name(default)
        params[key] = notebook.coerce(key, value, typ, default)
    raw = spec["steps"]
    items = list(raw.items()) if isinstance(raw, dict) else [(s.get("name"), s) for s in raw]
    steps = {}
    for name, body in items:
        steps[str(name)] = _step(p, str(name), body)
    _check_refs(p, steps, params)
    return Chain(str(spec.get("name") or p.stem), p.resolve(), params, _topo(p, steps))


def _step(p: Path, name: str, body: Any) -> Step:
    if not re.fullmatch(r"[A-Za-z_][\w-]*", name or "") or name == "params":
        raise InvalidInputError(f"{p.name}: bad step name {name!r} (letters, digits, _ or -; not 'params')")
    if isinstance(body, dict) and "chain" in body:
        return _chain_step(p, name, body)
    if not isinstance(body, dict) or "notebook" not in body:
        raise InvalidInputError(f"{p.name}: step '{name}' needs a 'notebook:' path (or 'chain: NAME@V')")
    unknown = set(body) - STEP_KEYS - {"name"}
    if unknown:
        raise InvalidInputError(f"{p.name}: step '{name}' has unknown key(s) {', '.join(sorted(unknown))}; "
                                f"valid: {', '.join(sorted(STEP_KEYS))}")
    nb = (p.parent / str(body["notebook"])).resolve()
    notebook.notebook_path(nb)  # NotFoundError now, not halfway through the chain
    needs = body.get("needs") or []
    return Step(name, nb, dict(body.get("params") or {}),
                [needs] if isinstance(needs, str) else list(needs),
                body.get("timeout"), body.get("retries"), body.get("kernel"))


def _chain_step(p: Path, name: str, body: dict[str, Any]) -> Step:
    from .. import chains

    unknown = set(body) - CHAIN_STEP_KEYS - {"name"}
    if unknown:
        raise InvalidInputError(f"{p.name}: chain step '{name}' has unknown key(s) {', '.join(sorted(unknown))}; "
                                f"valid: {', '.join(sorted(CHAIN_STEP_KEYS))}")
    ref = str(body["chain"])
    try:
        chains.get(ref)  # NotFoundError now, not halfway through the pipeline
    except NotFoundError as e:
        raise NotFoundError(f"{p.name}: step '{name}': {e}") from None
    inputs = body.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise InvalidInputError(f"{p.name}: chain step '{name}': 'inputs' must be a mapping name: value")
    needs = body.get("needs") or []
    return Step(name, None, dict(inputs), [needs] if isinstance(needs, str) else list(needs),
                chain=ref, model=body.get("model"))


def _check_refs(p: Path, steps: dict[str, Step], params: dict[str, Any]) -> None:
    for step in steps.values():
        static = {}
        for key, value in step.params.items():
            refs = REF.findall(value) if isinstance(value, str) else []
            for src, val in refs:
                if src == "params":
                    if val not in params:
                        raise InvalidInputError(f"{p.name}: step '{step.name}' uses ${{params.{val}}} "
                                                "but the chain has no such parameter")
                elif src not in steps:
                    raise InvalidInputError(f"{p.name}: step '{step.name}' refers to unknown step '{src}'")
                elif src not in step.needs:
                    step.needs.append(src)
            if not refs:
                static[key] = value
        for need in step.needs:
            if need not in steps:
                raise InvalidInputError(f"{p.name}: step '{step.name}' needs unknown step '{need}'")
        if step.notebook is not None:
            notebook.check_parameters(step.notebook, static)  # typos and types, before anything runs


def _topo(p: Path, steps: dict[str, Step]) -> dict[str, Step]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise InvalidInputError(f"{p.name}: steps form a cycle: {' -> '.join(path + [name])}")
        state[name] = 1
        for need in steps[name].needs:
            visit(need, path + [name])
        state[name] = 2
        order.append(name)

    for name in steps:
        visit(name, [])
    return {n: steps[n] for n in order}


def resolve(value: Any, values: dict[str, dict[str, Any]], step: str) -> Any:
    """Substitute ``${step.value}`` / ``${params.name}`` references in one parameter value."""
    if not isinstance(value, str):
        return value

    def lookup(src: str, key: str) -> Any:
        got = values.get(src, {})
        if key not in got:
            have = ", ".join(got) or "nothing"
            raise InvalidInputError(f"step '{step}' needs ${{{src}.{key}}} but {src} recorded {have}"
                                    " (record it with cellops.pipelines.record)")
        return got[key]

    whole = REF.fullmatch(value.strip())
    if whole:
        return lookup(*whole.groups())
    return REF.sub(lambda m: str(lookup(*m.groups())), value)


@dataclass(frozen=True)
class StepOptions:
    """What ``run_chain`` passes to each notebook step's ``run_notebook`` (a step's own
    ``timeout`` / ``retries`` / ``kernel`` in the file win)."""

    out_dir: Path | None = None  # each step's outputs go to out_dir/STEP
    timeout: float | None = None
    retries: int = 0
    kernel_name: str = kernel.DEFAULT_KERNEL
    cwd: Path | None = None  # every notebook step's working folder (default: its own folder)
    kernel_env: dict[str, str] = field(default_factory=dict)
    progress: bool = False


def run_chain(path: str | Path, params: dict[str, Any] | None = None, *, out_dir: str | Path | None = None,
              timeout: float | None = None, retries: int = 0, kernel_name: str = kernel.DEFAULT_KERNEL,
              workspace: Workspace | None = None, run_id: str | None = None,
              extra: dict[str, Any] | None = None, cwd: str | Path | None = None, name: str | None = None,
              kernel_env: dict[str, str] | None = None, progress: bool = False) -> Any:
    """Run every step of a pipeline file in dependency order; returns a PipelineRun. ``name``
    records the run under another name than the file's; ``cwd``, ``kernel_env``, ``progress``,
    ``timeout``, ``retries`` and ``kernel_name`` apply to every notebook step as in ``run_notebook``."""
    if retries < 0 or (timeout is not None and timeout <= 0):
        raise InvalidInputError("retries must be >= 0 and timeout > 0 seconds")
    ws = workspace or get_workspace()
    chain = load_chain(path, params)
    opts = StepOptions(Path(out_dir) if out_dir else None, timeout, retries, kernel_name,
                       Path(cwd).expanduser() if cwd else None, dict(kernel_env or {}), progress)
    run_id = run_id or uuid.uuid4().hex[:12]
    record: dict[str, Any] = {
        "pipeline": str(chain.path), "pipeline_hash": notebook.file_hash(chain.path),
        "params": chain.params, "given_params": dict(params or {}), "order": list(chain.steps),
        "steps": {}, "failed_step": None, "started_at": time.time(),
        "cwd": str(opts.cwd) if opts.cwd else None, "kernel_env": opts.kernel_env, **(extra or {}),
    }
    trace = Trace(f"pipeline {chain.name}", **{"cellops.pipeline": str(chain.path), "cellops.run_id": run_id})
    record["trace_id"] = trace.trace_id
    ws.record_run(KIND, record, name=name or chain.name, status="running", run_id=run_id)
    values: dict[str, dict[str, Any]] = {"params": chain.params}
    try:
        with ws.heartbeat(run_id), trace:  # readers show the chain dead once this process is gone
            for step in chain.steps.values():
                with trace.span(step.name, kind="chain", **_step_attrs(step)) as span:
                    _run_step(step, values, record, span, ws, run_id, opts)
                ws.update_run(run_id, steps=record["steps"])
            trace.end("error" if record["failed_step"] else None)
    finally:  # the notebooks' and chains' own traces joined this one under their step's span
        traces.save(ws, trace, run_id)
    status = "ok" if all(s["status"] == "ok" for s in record["steps"].values()) else "failed"
    record["finished_at"] = time.time()
    record["duration_s"] = round(record["finished_at"] - record["started_at"], 3)
    record["values"] = {s: v for s, v in values.items() if s != "params"}
    record["metrics"] = {f"{s}.{k}": v for s, vals in record["values"].items() for k, v in vals.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if record["failed_step"]:
        err = record["steps"][record["failed_step"]].get("error") or {}
        record["error"] = {"kind": "step_failed", "step": record["failed_step"],
                           "message": f"step {record['failed_step']} failed: {err.get('message', '')}"}
    ws.update_run(run_id, status=status, **record)
    return PipelineRun(run_id, status, record)


def _step_attrs(step: Step) -> dict[str, Any]:
    return {"cellops.chain": step.chain} if step.chain else {"cellops.notebook": str(step.notebook)}


def _run_step(step: Step, values: dict[str, dict[str, Any]], record: dict[str, Any], span: Span,
              ws: Workspace, run_id: str, opts: StepOptions) -> None:
    """One step inside its span: skipped when a step it needs did not succeed, else run."""
    info: dict[str, Any] = ({"chain": step.chain} if step.chain else {"notebook": str(step.notebook)}) | {
        "needs": step.needs}
    record["steps"][step.name] = info
    bad = [n for n in step.needs if record["steps"][n]["status"] != "ok"]
    if bad:
        info.update(status="skipped", reason=f"needs {', '.join(bad)}, which did not succeed")
        span.attrs["cellops.skipped"] = True
        return
    if step.chain is not None:
        got = _run_chain_step(step, values, info, ws)
    else:
        got = _run_notebook_step(step, values, info, ws, run_id, opts)
    if got is not None:
        values[step.name] = got
    if info["status"] == "failed":
        span.status, span.attrs["error"] = "error", str((info.get("error") or {}).get("message", ""))[:500]
        if record["failed_step"] is None:
            record["failed_step"] = step.name


def _run_notebook_step(step: Step, values: dict[str, dict[str, Any]], info: dict[str, Any],
                       ws: Workspace, run_id: str, opts: StepOptions) -> dict[str, Any] | None:
    """Run one notebook step; returns the values it recorded (None when it could not start)."""
    assert step.notebook is not None
    try:
        step_params = {k: resolve(v, values, step.name) for k, v in step.params.items()}
        result = run_notebook(step.notebook, step_params,
                     out_dir=opts.out_dir / step.name if opts.out_dir else None,
                     timeout=step.timeout or opts.timeout,
                     retries=step.retries if step.retries is not None else opts.retries,
                     kernel_name=step.kernel or opts.kernel_name, workspace=ws,
                     extra={"chain": run_id, "step": step.name}, cwd=opts.cwd,
                     kernel_env=opts.kernel_env, progress=opts.progress)
    except InvalidInputError as e:
        info.update(status="failed", error={"kind": "params", "message": str(e)})
        return None
    info.update(status=result.status, run_id=result.id, params=step_params,
                values=result.values, error=result.error,
                output_notebook=result.record.get("output_notebook"),
                output_html=result.record.get("output_html"))
    return result.values


def _run_chain_step(step: Step, values: dict[str, dict[str, Any]], info: dict[str, Any],
                    ws: Workspace) -> dict[str, Any] | None:
    """Run a saved chain in this process (no kernel to start: a chain is one function call); its
    output, status, trace id and run id become the step's values for later ``${step.output}``."""
    from .. import chains
    from ..errors import CellopsError

    try:
        inputs = {k: resolve(v, values, step.name) for k, v in step.params.items()}
        r = chains.run(step.chain or "", inputs, step.model, workspace=ws, source="pipeline")
    except chains.ChainStepError as e:
        r = e.run
        info.update(status="failed", error={"kind": "chain", "message": str(e)})
    except CellopsError as e:
        info.update(status="failed", error={"kind": "params", "message": str(e)})
        return None
    else:
        ok = r.status == "ok"
        info.update(status="ok" if ok else "failed", error=None if ok else {
            "kind": "blocked", "message": f"chain {r.chain} was blocked at step {r.stopped_at}"})
    got = {"output": r.output, "status": r.status, "trace_id": r.trace_id, "run_id": r.run_id}
    info.update(run_id=r.run_id, trace_id=r.trace_id, params=inputs, values=got)
    return got
