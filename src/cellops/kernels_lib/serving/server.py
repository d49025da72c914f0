"""Run the app on uvicorn: in this process (``cellops serve``), or as N worker processes.

With ``workers > 1`` uvicorn starts each worker from the import string
``cellops.kernels_lib.serving.app:factory``, which rebuilds the same app from the config in
``CELLOPS_SERVE_CONFIG``; every worker loads its own model copy and writes to the same workspace
(SQLite WAL). Limits (per client, queue) then hold per worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from ..workspace import get_workspace
from . import auth
from .config import ENV, ServeConfig


def announce(cfg: ServeConfig, say: Callable[[str], None] = print) -> None:
    """Print where the app listens, and its token the one time it is generated."""
    ws = get_workspace(cfg.workspace or None)
    token, created = auth.load_token(ws, cfg.app_name, cfg.token_file)
    where = cfg.token_file or auth.token_path(ws, cfg.app_name)
    say(f"cellops serve: {cfg.app_name} ({', '.join(f'{v}={t}' for v, t in cfg.variants.items())}) on "
        f"http://{cfg.host}:{cfg.port}/v1")
    if created:
        say(f"API token (shown once; kept in {where}, mode 0600): {token}")
    else:
        say(f"API token: in {where}")


def serve(cfg: ServeConfig) -> None:
    """Blocks until the server is stopped (SIGINT / SIGTERM)."""
    import uvicorn

    ws = get_workspace(cfg.workspace or None)
    cfg = replace(cfg, workspace=str(ws.root))  # every worker opens this very workspace
    announce(cfg)
    common = {"host": cfg.host, "port": cfg.port, "log_level": "warning", "access_log": False,
              "timeout_graceful_shutdown": 5, "server_header": False}
    if cfg.workers > 1:
        os.environ[ENV] = cfg.to_json()
        uvicorn.run("cellops.kernels_lib.serving.app:factory", factory=True, workers=cfg.workers, **common)
    else:
        from .app import create_app

        uvicorn.run(create_app(cfg), **common)
