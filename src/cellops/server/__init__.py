"""Jupyter server extension: a read-only REST API over the workspace (``/cellops/api/``).

Enabled by the config file that ``pip install`` puts in etc/jupyter/jupyter_server_config.d;
``cellops._jupyter_server_extension_points`` points here. It also hooks the user's saves: a
scheduled notebook saved in this Jupyter keeps its schedule's consent (``vouch_for_saved``).
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
    serverapp.contents_manager.register_post_save_hook(vouch_for_saved)


def vouch_for_saved(os_path: str, model: Any = None, contents_manager: Any = None, **_: Any) -> None:
    """Post-save hook: the user edited a notebook a schedule runs in their own Jupyter, so the
    scheduler may run the new code (``kernels_lib.trust.reconsent_saved``); a ``git pull`` never
    comes through here. It never fails the save (the file is written already)."""
    import logging

    log = getattr(contents_manager, "log", None) or logging.getLogger("cellops")
    try:
        from ..kernels_lib.trust import reconsent_saved

        if reconsent_saved(os_path):
            log.info("cellops: %s is scheduled; its saved code is trusted for its schedules", os_path)
    except Exception:  # a broken consent file must not turn a saved notebook into an error
        log.warning("cellops: could not record the consent for %s", os_path, exc_info=True)
