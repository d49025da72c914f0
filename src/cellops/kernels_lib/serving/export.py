"""``cellops feedback export NAME``: a served app's rated traffic as training rows.

Served feedback lives in the same store as ``%prompt feedback`` (``prompt_feedback``, keyed by
the request's run); this picks the ratings of the app's requests and builds rows with the same
code (``prompts.feedback.build_rows``): SFT rows from up-rated and corrected answers, preference
pairs from up/down answers to the same input and from corrections (corrected > original). The
rows are chat rows (``messages``), which %%finetune reads.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import InvalidInputError
from ..prompts import feedback
from ..workspace import Workspace, get_workspace
from . import records


def served_feedback(app: str, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """The ratings of the app's requests, oldest first."""
    ws = workspace or get_workspace()
    with ws.db() as conn:
        rows = conn.execute(
            "SELECT f.* FROM prompt_feedback f JOIN serve_requests s ON s.run_id = f.run_id "
            "WHERE s.app=? AND f.cell='' ORDER BY f.created_at", (app,)).fetchall()
    return [{**dict(r), "messages": json.loads(r["messages"])} for r in rows]


def export(app: str, fmt: str, path: str | os.PathLike[str], workspace: Workspace | None = None) -> feedback.Export:
    ws = workspace or get_workspace()
    items = served_feedback(app, ws)
    if not items:
        if not records.count(ws, app):
            raise InvalidInputError(f"no served app '{app}' in this workspace; apps: {', '.join(records.apps(ws)) or '(none)'}")
        raise InvalidInputError(f"no feedback on {app}'s answers yet: POST /v1/feedback or rate them in its chat page")
    rows = feedback.build_rows(items, fmt, f"served app '{app}'")
    return feedback.Export(feedback.write_jsonl(rows, path), fmt, len(rows), len(items))
