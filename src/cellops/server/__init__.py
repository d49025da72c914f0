"""Jupyter server extension: a read-only REST API over the workspace (``/cellops/api/``).

Enabled by the config file that ``pip install`` puts in etc/jupyter/jupyter_server_config.d;
``cellops._jupyter_server_extension_points`` points here.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "cellops.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.utils import url_path_join

    from .handlers import CellopsHandler

    web_app = serverapp.web_app
    root_dir = getattr(serverapp.contents_manager, "root_dir", None) or serverapp.root_dir
    pattern = url_path_join(web_app.settings["base_url"], "cellops", "api", "?(.*)")
    web_app.add_handlers(".*$", [(pattern, CellopsHandler, {"root_dir": root_dir})])
    serverapp.log.info("cellops: workspace API at %s", pattern)
