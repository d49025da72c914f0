"""The ASGI app (Starlette) behind ``cellops serve``: OpenAI-compatible chat, models, feedback.

Routes: ``POST /v1/chat/completions`` (JSON or SSE stream), ``GET /v1/models``,
``POST /v1/feedback``, ``GET /healthz`` and ``GET /`` (the chat page). Every ``/v1`` route needs
the bearer token; ``/healthz`` (for load balancers) and the page itself (a static file that asks
for the token) do not. Errors are OpenAI-style bodies ``{"error": {message, type, param, code}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import CellopsError
from ..tracking.trace import parse_traceparent
from ..workspace import get_workspace
from . import api, auth, records
from .config import ENV, ServeConfig
from .engine import Cancel, Engine, new_id

log = logging.getLogger("cellops.serve")


def _error(e: api.APIError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise api.APIError(413, f"the request body is larger than {limit} bytes", code="body_too_large")
    chunks, size = [], 0
    async for c in request.stream():
        size += len(c)
        if size > limit:
            raise api.APIError(413, f"the request body is larger than {limit} bytes", code="body_too_large")
        chunks.append(c)
    return b"".join(chunks)


def create_app(cfg: ServeConfig) -> Starlette:
    ws = get_workspace(cfg.workspace or None)
    token, _ = auth.load_token(ws, cfg.app_name, cfg.token_file)
    engine = Engine(cfg, ws)

    def authorize(request: Request) -> None:
        if not auth.check(request.headers.get("authorization"), token):
            raise api.APIError(401, "missing or wrong bearer token: send 'Authorization: Bearer TOKEN'",
                               code="invalid_api_key")

    def client_of(request: Request, user: str | None) -> tuple[str | None, str]:
        """(client id for the record and A/B, key for the per-client limit)."""
        client = user or request.headers.get("x-user-id") or None
        host = request.client.host if request.client else "?"
        return client, f"user:{client}" if client else f"ip:{host}"

    async def chat(request: Request) -> Response:
        authorize(request)
        req = api.parse(api.ChatRequest, await _body(request, cfg.max_body_bytes))
        if req.model != engine.app:
            raise api.APIError(404, f"the model '{req.model}' does not exist; this server serves '{engine.app}'",
                               code="model_not_found", param="model")
        turns = api.to_turns(req, cfg.max_tokens_limit, cfg.max_messages)
        client, key = client_of(request, req.user)
        variant = engine.variant_for(client)
        parent = parse_traceparent(request.headers.get("traceparent") or "")
        engine.admit(key)
        if req.stream:
            include_usage = bool((req.stream_options or {}).get("include_usage"))
            return _Stream(_stream(engine, variant, turns, client, include_usage, parent), lambda: engine.release(key),
                           media_type="text/event-stream",
                           headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            rid, out = await engine.call(variant, turns, client, stream=False, parent=parent)
        finally:
            engine.release(key)
        body = api.completion(rid, engine.app, out.text, out.finish_reason,
                              api.usage(out.prompt_tokens, out.completion_tokens), _extra(engine, variant, out))
        return JSONResponse(body)

    async def models(request: Request) -> Response:
        authorize(request)
        return JSONResponse({"object": "list", "data": [
            {"id": engine.app, "object": "model", "created": int(engine.started), "owned_by": "cellops"}]})

    async def feedback(request: Request) -> Response:
        authorize(request)
        fb = api.parse(api.FeedbackRequest, await _body(request, cfg.max_body_bytes))
        return JSONResponse(await engine.run_sync(_rate, engine, fb))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "app": engine.app, "pid": os.getpid(),
                             "variants": {v: t.ref for v, t in engine.variants.items()},
                             "served": engine.served, "queued": engine.waiting})

    async def page(request: Request) -> Response:
        from .page import chat_page

        return HTMLResponse(chat_page(engine.app), headers={
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
                                       "style-src 'unsafe-inline'; connect-src 'self'",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})

    async def on_api_error(request: Request, e: Exception) -> Response:
        assert isinstance(e, api.APIError)
        return _error(e)

    async def on_http_error(request: Request, e: Exception) -> Response:
        assert isinstance(e, HTTPException)
        return _error(api.APIError(e.status_code, str(e.detail), code="not_found" if e.status_code == 404 else None))

    async def on_crash(request: Request, e: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return _error(api.APIError(500, f"internal error: {type(e).__name__}", type_="server_error"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.get_running_loop().run_in_executor(None, _warm_models, engine)
        engine.warm()
        yield
        engine.close()

    app = Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", page, methods=["GET"]),
    ], exception_handlers={api.APIError: on_api_error, HTTPException: on_http_error, Exception: on_crash},
        lifespan=lifespan)
    app.state.engine = engine
    return app


def _warm_models(engine: Engine) -> None:
    for t in engine.variants.values():
        t.warm()  # the first load (seconds) happens here, not in the first request
    policy = engine.policy
    if isinstance(policy, str) and policy == "active":
        from ..guard import active_policy

        try:
            policy = active_policy(engine.ws)
        except CellopsError as e:  # each request reports it, as before; nothing to warm
            log.warning("the workspace's active guard policy does not load: %s", e)
            policy = None
    if policy is not None:
        policy.warm()  # a cascade's judge prompt, evaluated once before the first request


class _Stream(StreamingResponse):
    """A streamed answer that frees its client slot exactly once, however the stream ends (even
    when the client leaves before the first chunk and the generator never starts)."""

    def __init__(self, content: AsyncIterator[bytes], release: Any, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _stream(engine: Engine, variant: str, turns: Any, client: str | None,
                  include_usage: bool, parent: tuple[str, str] | None) -> AsyncIterator[bytes]:
    """SSE in OpenAI's chunk format: role, content deltas, the finish chunk, usage, [DONE]."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    cancel, rid = Cancel(), new_id()
    task = asyncio.ensure_future(engine.call(variant, turns, client, stream=True, cancel=cancel, rid=rid, parent=parent,
                                             on_token=lambda p: loop.call_soon_threadsafe(queue.put_nowait, p)))
    task.add_done_callback(lambda _t: queue.put_nowait(None))
    sent: list[str] = []
    try:
        yield api.chunk(rid, engine.app, {"role": "assistant", "content": ""})
        while (piece := await queue.get()) is not None:
            sent.append(piece)
            yield api.chunk(rid, engine.app, {"content": piece})
        try:
            _, out = task.result()
        except api.APIError as e:
            yield api.sse(e.body())
            return
        shown = "".join(sent)
        rest = out.text[len(shown):] if out.text.startswith(shown) else ("\n" if shown else "") + out.text
        if rest:
            yield api.chunk(rid, engine.app, {"content": rest})
        yield api.chunk(rid, engine.app, {}, out.finish_reason, _extra(engine, variant, out))
        if include_usage:
            yield api.sse({"id": rid, "object": "chat.completion.chunk", "model": engine.app, "choices": [],
                           "usage": api.usage(out.prompt_tokens, out.completion_tokens)})
        yield api.sse("[DONE]")
    finally:
        if not task.done():
            cancel.set("cancelled")  # the client went away mid-stream: stop generating
            task.cancel()


def _extra(engine: Engine, variant: str, out: Any) -> dict[str, Any]:
    """cellops' additions to the OpenAI body (clients ignore unknown keys)."""
    extra: dict[str, Any] = {"cellops": {"variant": variant, "target": engine.variants[variant].ref,
                                         "run_id": out.run_id, "trace_id": out.trace_id,
                                         "blocked": out.blocked, "guard": out.guard}}
    if out.citations is not None:
        extra["citations"] = out.citations
    return extra


def _rate(engine: Engine, fb: api.FeedbackRequest) -> dict[str, Any]:
    from ..prompts import feedback as store

    row = records.get(engine.ws, fb.response_id)
    if row is None or row["app"] != engine.app:
        raise api.APIError(404, f"no response '{fb.response_id}' from {engine.app}", code="not_found",
                           param="response_id")
    if not row["run_id"]:
        raise api.APIError(400, f"response '{fb.response_id}' failed ({row['status']}); there is no answer to rate")
    try:
        score = fb.rating if isinstance(fb.rating, int) else None
        saved = store.rate(row["run_id"], None if score else fb.rating, fb.comment, workspace=engine.ws,
                           correction=fb.correction, score=score)
    except CellopsError as e:
        raise api.from_cellops_error(e) from None
    return {"id": fb.response_id, "object": "feedback", "rating": saved["rating"], "score": saved["score"],
            "recorded": True}


def factory() -> Starlette:
    """``uvicorn --factory cellops.kernels_lib.serving.app:factory`` (each worker process)."""
    return create_app(ServeConfig.from_json(os.environ[ENV]))


