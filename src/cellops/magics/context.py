"""What a magic module gets: the shell, the user namespace, config and the workspace."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from ..kernels_lib import env
from ..kernels_lib.workspace import Workspace, get_workspace


class MagicArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, no traceback) instead of exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exit_on_error", False)
        kwargs.setdefault("add_help", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}. Try {self.prog}? for help")

    def parse_line(self, line: str) -> argparse.Namespace:
        try:
            argv = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"{self.prog}: cannot parse arguments ({e}); check your quotes") from None
        try:
            return self.parse_args(argv)
        except argparse.ArgumentError as e:
            self.error(str(e))
            raise  # unreachable


def parse_kv(pairs: list[str] | None, flag: str = "-p") -> dict[str, Any]:
    """['k=v', ...] -> {k: v}; values that look like Python/JSON literals are converted."""
    import ast

    out: dict[str, Any] = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageError(f"malformed {flag} '{p}': use {flag} name=value (name a Python identifier)")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


@dataclass
class MagicContext:
    shell: Any
    config: Any  # the Cellops Magics instance (traitlets: model, embedder, workspace)

    @property
    def user_ns(self) -> dict[str, Any]:
        return self.shell.user_ns

    @property
    def workspace(self) -> Workspace:
        return get_workspace(self.config.workspace or None)

    @property
    def live(self) -> bool:
        """A kernel with a front end (widgets render); False in a terminal or a batch run."""
        return (type(self.shell).__name__ == "ZMQInteractiveShell"
                and not env.batch())

    def store(self, var: str | None, value: Any) -> None:
        if var:
            if not var.isidentifier():
                raise UsageError(f"-o needs a Python variable name, got '{var}'")
            self.user_ns[var] = value

    def lookup(self, name: str) -> Any:
        """A user-namespace variable, for arguments that accept a variable name (DataFrames...)."""
        if name in self.user_ns:
            return self.user_ns[name]
        raise UsageError(f"no variable named '{name}' in the notebook")
