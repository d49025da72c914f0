"""Which model each task uses when a call names none: the one place the default is resolved.

Tasks: ``prompt`` (``%%prompt``, plain ``generate``), ``answer`` (``%%rag ask``) and ``judge``
(llm-rubric assertions, the guard's ``llm_judge``). A small model is fine for the first and too
weak for the other two, so they can point at a stronger one without slowing every prompt.

Order, first set wins: the call's own model -> ``%config Cellops.answer_model`` /
``Cellops.judge_model`` / ``Cellops.model`` (the magics push them here with :func:`configure`)
-> env ``CELLOPS_ANSWER_MODEL`` / ``CELLOPS_JUDGE_MODEL`` / ``CELLOPS_MODEL`` -> for answer and
judge, the general model (``Cellops.model`` / ``CELLOPS_MODEL``) -> ``default``.
"""

from __future__ import annotations

import os

from ..errors import InvalidInputError

TASKS = ("prompt", "answer", "judge")
ENV = {"prompt": "CELLOPS_MODEL", "answer": "CELLOPS_ANSWER_MODEL", "judge": "CELLOPS_JUDGE_MODEL"}
_configured: dict[str, str] = {}


def configure(task: str, uri: str | None) -> None:
    """Set (or with ``""``/None clear) the configured model of ``task`` for this process."""
    if task not in TASKS:
        raise InvalidInputError(f"unknown model task '{task}'; tasks: {', '.join(TASKS)}")
    if uri and uri.strip():
        _configured[task] = uri.strip()
    else:
        _configured.pop(task, None)


def _own(task: str) -> str | None:
    return _configured.get(task) or os.environ.get(ENV[task], "").strip() or None


def model_for(task: str, explicit: str | None = None) -> str:
    """The model URI ``task`` uses: ``explicit`` if given, else the configured one (see module doc)."""
    if task not in TASKS:
        raise InvalidInputError(f"unknown model task '{task}'; tasks: {', '.join(TASKS)}")
    if explicit and explicit.strip():
        return explicit.strip()
    return _own(task) or _own("prompt") or "default"
