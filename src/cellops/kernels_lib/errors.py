"""The CellopsError family.

Every error a user can cause (bad argument, missing file, unknown model, corrupt index...) is a
CellopsError whose message is ONE line that says what to do next. Magics turn these into
IPython UsageErrors (no traceback); real bugs keep their traceback.
"""

from __future__ import annotations


class CellopsError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class InvalidInputError(CellopsError, ValueError):
    """A wrong argument, malformed value, bad template or bad data row."""


class NotFoundError(CellopsError, LookupError):
    """A name, version, alias, file or backend that does not exist."""


class ModelError(CellopsError):
    """A model backend failed to load or to answer (missing file, endpoint down...)."""


class WorkspaceError(CellopsError):
    """The .cellops workspace is corrupt, locked or not writable."""


class GuardBlocked(CellopsError):
    """A guard policy blocked an input or an output. `.report` holds the guard report."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class JobError(CellopsError):
    """A background job (fine-tune, pipeline run) failed or cannot start."""
