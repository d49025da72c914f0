"""Serving: a prompt, RAG app or chain behind an OpenAI-compatible API (``cellops serve``).

    from cellops.kernels_lib.serving import ServeConfig, create_app, serve
    serve(ServeConfig("support@2", b="support@3", split=0.5, port=8000))

``create_app(cfg)`` is a plain ASGI app (Starlette) for any ASGI server or load balancer;
``procs`` runs it as a detached process (``%serve start``). See docs/serving.md.
"""

from __future__ import annotations

from typing import Any

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app", "serve"]


def create_app(cfg: ServeConfig) -> Any:
    from .app import create_app as _create

    return _create(cfg)


def serve(cfg: ServeConfig) -> None:
    from .server import serve as _serve

    _serve(cfg)
