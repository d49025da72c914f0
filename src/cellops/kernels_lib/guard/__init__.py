"""Guardrails: policies (versioned YAML) of input / retrieval / output checks."""

from __future__ import annotations

from typing import Any

from ..workspace import Workspace

ACTIVE_KEY = "guard.active"


def active_policy(ws: Workspace) -> Any | None:
    """The policy switched on with ``%guard on NAME`` in this workspace, or None."""
    ref = ws.get_state(ACTIVE_KEY)
    if not ref:
        return None
    from .policy import load

    return load(ref, workspace=ws)
