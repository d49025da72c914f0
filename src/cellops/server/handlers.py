"""Tornado handlers: GET /cellops/api/<resource>[/...] -> JSON, behind Jupyter's auth.

All resources take ``?dir=`` (a folder under the server root; the workspace is its .cellops,
as for a notebook kernel started there). Errors come back as ``{"error": message}`` with the
one-line CellopsError text, so the panel can show what to do; the server itself never fails.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from .. import __version__
from ..kernels_lib.errors import CellopsError, NotFoundError, WorkspaceError
from .reader import OutsideError, Reader, locate

RESOURCES = ("status", "prompts", "runs", "indexes", "models", "datasets", "jobs", "schedules", "traces", "file")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise web.HTTPError(400, f"expected a whole number, got {value!r}") from None


def route(reader: Reader, parts: list[str], arg: Callable[[str], str | None]) -> Any:
    """Map ``/cellops/api/<parts>`` onto a Reader method (runs in a worker thread)."""
    head, rest = (parts[0] if parts else ""), parts[1:]
    if head == "prompts" and not rest:
        return reader.prompts()
    if head == "prompts" and len(rest) == 1:
        return reader.prompt(rest[0])
    if head == "prompts" and len(rest) == 2 and rest[1] == "diff":
        a, b = arg("a"), arg("b")
        if not a or not b:
            raise web.HTTPError(400, "diff needs ?a=VERSION&b=VERSION")
        return reader.prompt_diff(rest[0], a, b)
    if head == "runs" and not rest:
        return reader.runs(arg("kind"), arg("name"), _int(arg("limit"), 50))
    if head == "runs" and len(rest) == 1:
        return reader.run(rest[0])
    if head == "traces" and not rest:
        return reader.traces(arg("name"), arg("status"), arg("since"), _int(arg("limit"), 50))
    if head == "traces" and len(rest) == 1:
        return reader.trace(rest[0])
    if head == "jobs" and len(rest) == 1:
        return reader.job(rest[0], since=_int(arg("since"), 0))
    if head == "file" and not rest:
        return reader.file(arg("path") or "")
    simple = {"status": reader.status, "indexes": reader.indexes, "models": reader.models,
              "datasets": reader.datasets,
              "jobs": reader.jobs, "schedules": reader.schedules}
    if head in simple and not rest:
        return simple[head]()
    raise web.HTTPError(404, f"no endpoint /cellops/api/{'/'.join(parts)}; try one of "
                        + ", ".join(RESOURCES))


class CellopsHandler(APIHandler):
    auth_resource = "cellops"

    def initialize(self, root_dir: str) -> None:
        self.root_dir = root_dir

    def _arg(self, name: str) -> str | None:
        return self.get_query_argument(name, None)

    def _work(self, path: str) -> Any:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return {"version": __version__, "resources": list(RESOURCES)}
        reader = Reader(locate(self.root_dir, self._arg("dir") or ""))
        return reader.call(lambda: route(reader, parts, self._arg))

    @web.authenticated
    @authorized
    async def get(self, path: str = "") -> None:
        try:
            result = await asyncio.to_thread(self._work, path)
        except OutsideError as e:
            return self._error(403, str(e))
        except NotFoundError as e:
            return self._error(404, str(e))
        except (WorkspaceError, sqlite3.DatabaseError) as e:
            # a damaged store is the user's to fix; say how, keep serving everything else
            self.log.warning("cellops: %s", e)
            msg = str(e) if isinstance(e, WorkspaceError) else (
                f"workspace database is corrupt ({e}); move cellops.db aside to start fresh")
            return self._error(500, msg)
        except CellopsError as e:
            return self._error(400, str(e))
        self.finish(json.dumps(result, default=str))

    def _error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"error": message, "status": status}))
