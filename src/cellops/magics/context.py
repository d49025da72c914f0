"""What a magic module gets: the shell, the user namespace, config and the workspace."""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass, make_dataclass
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

    def parse_line(self, line: str) -> Any:
        """The line's arguments as a frozen dataclass (one class per parser, fields = its dests):
        a command cannot change what it was given, and the value compares and prints plainly."""
        try:
            argv = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"{self.prog}: cannot parse arguments ({e}); check your quotes") from None
        try:
            ns = self.parse_args(argv)
        except argparse.ArgumentError as e:
            self.error(str(e))
            raise  # unreachable
        return self.args_class()(**vars(ns))

    def args_class(self) -> type:
        if getattr(self, "_args_class", None) is None:
            fields = [(a.dest, _field_type(a)) for a in self._actions if a.dest != argparse.SUPPRESS]
            name = "".join(w.strip("%").capitalize() for w in self.prog.split()) + "Args"
            self._args_class = make_dataclass(name, fields, frozen=True)
        return self._args_class


def _field_type(action: argparse.Action) -> Any:
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        return bool
    base = action.type if isinstance(action.type, type) else str
    if isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+"):
        return list[base] | None  # type: ignore[valid-type]
    return base if action.required or action.default is not None else base | None


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


# One interpolation syntax for every magic: {var}. IPython already expands {var} in a magic's line;
# cellops does the same in the cell bodies that are plain text (%%rag ask, %%rag build, %%dataset).
# Template bodies (%%prompt, %%chain YAML) are Jinja: {{ var }} is filled at each run instead.
_VAR = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DOLLAR = re.compile(r"(?<![\w$])\$([A-Za-z_][A-Za-z0-9_]*)")
_JINJA = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SINGLE = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def interpolate(ctx: MagicContext, text: str) -> str:
    """'{var}' -> str(var) from the notebook; '{{' and '}}' are literal braces.

    ``$var`` or ``{{ var }}`` naming a notebook variable is an error that names ``{var}``: left as
    it was, it would reach the model or the loader as literal text without a word."""
    for pattern, wrote in ((_DOLLAR, "${}"), (_JINJA, "{{{{ {} }}}}")):
        m = next((m for m in pattern.finditer(text) if m.group(1) in ctx.user_ns), None)
        if m is not None:
            raise UsageError(f"write {{{m.group(1)}}} to insert the notebook variable, not "
                             f"{wrote.format(m.group(1))} (cellops magics interpolate {{var}}; "
                             "{{ and }} are literal braces)")

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return str(ctx.lookup(m.group(1)))

    return _VAR.sub(sub, text)


def check_template(ctx: MagicContext, template: str) -> None:
    """A template body (Jinja) with {var} or $var naming a notebook variable: say {{ var }}."""
    for pattern in (_SINGLE, _DOLLAR):
        m = next((m for m in pattern.finditer(template) if m.group(1) in ctx.user_ns), None)
        if m is not None:
            raise UsageError(f"this cell body is a Jinja template: write {{{{ {m.group(1)} }}}} for the "
                             f"variable '{m.group(1)}' (filled at each run from -p or the notebook), "
                             f"not {m.group(0)}")
