"""The serving engine: the app's targets, per-model serialization, limits, and recording.

A llama.cpp context is not thread-safe and serves one request at a time, so generation is
serialized per model: one asyncio semaphore per model URI (size 1 unless the backend says it
``supports_concurrency``, e.g. an HTTP endpoint) that A and B share when they use the same model.
Waiting requests form the queue; ``max_queue`` of them at most, the next one gets 429. The call
itself (guard, generate, record) runs in a worker thread, never on the event loop. A request that
passes its deadline is answered 504 at once and its generation is stopped at the next token.
"""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import CellopsError, InvalidInputError
from ..models import OnToken
from ..tracking import Trace, traces
from ..workspace import Workspace
from . import ab, records, targets
from .api import APIError, from_cellops_error
from .config import ServeConfig

PARALLEL = 8  # concurrent calls per model whose backend allows it


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


class Stopped(Exception):
    """Raised inside on_token to stop a generation (deadline passed or client gone)."""


class Cancel:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = "cancelled"

    def set(self, reason: str) -> None:
        self.reason = reason
        self.event.set()


def policy_for(cfg: ServeConfig, ws: Workspace) -> Any:
    if cfg.guard is None:
        return "active"
    if cfg.guard == "off":
        return None
    from ..guard import load

    return load(cfg.guard, ws)


class Engine:
    def __init__(self, cfg: ServeConfig, ws: Workspace) -> None:
        self.cfg, self.ws, self.app = cfg, ws, cfg.app_name
        opts = targets.Options(ws, cfg.model, policy_for(cfg, ws), cfg.input_var, cfg.rag_prompt, cfg.cache)
        self.policy = opts.policy
        self.variants = {v: targets.parse(spec, opts) for v, spec in cfg.variants.items()}
        self.executor = ThreadPoolExecutor(max_workers=PARALLEL + 4, thread_name_prefix="cellops-serve")
        self.sems: dict[str, asyncio.Semaphore] = {}
        self.waiting = 0
        self.inflight: Counter[str] = Counter()
        self.served = 0
        self.started = time.time()

    def warm(self) -> None:
        """Load every model before the first request (called once, from the server's startup)."""
        for t in self.variants.values():
            size = PARALLEL if t.warm() else 1
            self.sems.setdefault(t.model_uri, asyncio.Semaphore(size))

    def variant_for(self, client: str | None) -> str:
        return ab.assign(self.app, client, self.cfg.split) if "b" in self.variants else "a"

    def admit(self, key: str) -> None:
        """Per-client and queue limits, checked before any work (429 with Retry-After)."""
        if self.inflight[key] >= self.cfg.per_client:
            raise APIError(429, f"too many concurrent requests from this client (limit {self.cfg.per_client}); retry later",
                           type_="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "1"})
        if self.waiting >= self.cfg.max_queue:
            raise APIError(429, f"the server is busy ({self.waiting} requests queued); retry later",
                           type_="rate_limit_error", code="server_busy", headers={"Retry-After": "2"})
        self.inflight[key] += 1

    def release(self, key: str) -> None:
        self.inflight[key] -= 1
        if self.inflight[key] <= 0:
            del self.inflight[key]

    async def call(self, variant: str, turns: targets.Turns, client: str | None, stream: bool,
                   on_token: OnToken | None = None, cancel: Cancel | None = None,
                   rid: str | None = None, parent: tuple[str, str] | None = None) -> tuple[str, targets.Outcome]:
        """Queue for the model, run the target in a thread, record the request; (response id, outcome)."""
        target = self.variants[variant]
        rid = rid or new_id()
        cancel = cancel or Cancel()
        t0 = time.perf_counter()
        deadline = t0 + self.cfg.timeout_s
        sem = self.sems[target.model_uri]
        self.waiting += 1
        try:
            await asyncio.wait_for(sem.acquire(), timeout=self.cfg.timeout_s)
        except asyncio.TimeoutError:
            raise APIError(504, f"no model slot within {self.cfg.timeout_s:.0f}s; retry later",
                           type_="timeout", code="timeout") from None
        finally:
            self.waiting -= 1
        loop = asyncio.get_running_loop()
        freed = threading.Event()

        def free() -> None:  # exactly once, whichever comes first
            if not freed.is_set():
                freed.set()
                sem.release()

        # the slot frees as soon as the model is done (the thread calls back), so the next request
        # generates while this one writes its record; at the latest when the thread ends
        fut = loop.run_in_executor(self.executor, self._work, rid, variant, target, turns, client,
                                   stream, on_token, cancel, t0, parent, lambda: loop.call_soon_threadsafe(free))
        fut.add_done_callback(lambda _f: free())
        try:
            outcome = await asyncio.wait_for(asyncio.shield(fut), timeout=max(0.0, deadline - time.perf_counter()))
        except asyncio.TimeoutError:
            cancel.set("timeout")
            raise APIError(504, f"the answer took longer than {self.cfg.timeout_s:.0f}s and was stopped",
                           type_="timeout", code="timeout") from None
        except asyncio.CancelledError:
            cancel.set("cancelled")  # the client went away
            raise
        self.served += 1
        return rid, outcome

    def _work(self, rid: str, variant: str, target: targets.Target, turns: targets.Turns,
              client: str | None, stream: bool, on_token: OnToken | None, cancel: Cancel,
              t0: float, parent: tuple[str, str] | None = None,
              model_done: Any = lambda: None) -> targets.Outcome:
        def tok(piece: str) -> None:
            if cancel.event.is_set():
                raise Stopped
            if on_token is not None:
                on_token(piece)

        row = records.RequestRow(rid, self.app, variant, target.ref if target.kind == "prompt" else f"{target.kind}:{target.ref}",
                                 client, "ok", 0.0, stream)
        # one trace per request (continuing the caller's trace when it sent a traceparent); the
        # prompt / rag run's own trace joins it as a child
        trace = Trace(f"serve {self.app}", kind="chain", remote=parent, **{
            "cellops.app": self.app, "cellops.variant": variant, "cellops.target": row.target,
            "cellops.response_id": rid, "enduser.id": client or "", "input.value": turns.last_user[:500]})
        row.trace_id = trace.trace_id
        try:
            with trace:
                try:
                    out = target.answer(turns, tok)
                finally:
                    model_done()
                trace.root.attrs |= {"gen_ai.usage.input_tokens": out.prompt_tokens,
                                     "gen_ai.usage.output_tokens": out.completion_tokens,
                                     "output.value": out.text[:500]}
        except Stopped:
            self._record_failure(row, t0, cancel.reason, f"stopped: {cancel.reason}", trace=trace)
            raise
        except InvalidInputError as e:
            trace.end("error")  # the client's mistake: not an answer, not recorded (nor its trace)
            raise from_cellops_error(e) from None
        except CellopsError as e:
            self._record_failure(row, t0, "error", str(e), trace=trace)
            raise from_cellops_error(e) from None
        except Exception as e:
            self._record_failure(row, t0, "error", f"{type(e).__name__}: {e}", traceback.format_exc(), trace)
            raise
        out.trace_id = trace.trace_id
        traces.save(self.ws, trace, out.run_id)
        row.status = "blocked" if out.blocked else "ok"
        row.latency_s = time.perf_counter() - t0
        row.ttft_s, row.prompt_tokens, row.completion_tokens = out.ttft_s, out.prompt_tokens, out.completion_tokens
        row.run_id, row.model = out.run_id, out.model
        row.input, row.output = out.input_text, out.text
        row.record = {"versions": out.versions, "guard": out.guard, "blocked": out.blocked,
                      "finish_reason": out.finish_reason, "params": turns.params,
                      "history_turns": len(turns.history), "variables": sorted(turns.variables)}
        if out.citations is not None:
            row.record["citations"] = out.citations
        records.insert(self.ws, row)
        return out

    def _record_failure(self, row: records.RequestRow, t0: float, status: str, error: str,
                        tb: str | None = None, trace: Trace | None = None) -> None:
        row.status, row.latency_s = status, time.perf_counter() - t0
        row.record = {"error": error[:2000]} | ({"traceback": tb[-4000:]} if tb else {})
        if trace is not None:
            trace.end("error")
            traces.save(self.ws, trace)
        records.insert(self.ws, row)

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        """A blocking workspace call (feedback, counts) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
