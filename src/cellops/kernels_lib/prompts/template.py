"""Prompt templates: Jinja2 in a sandbox with StrictUndefined, errors as one clear line."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from ..errors import InvalidInputError

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)


@lru_cache(maxsize=256)
def _compile(source: str):  # noqa: ANN202 - jinja2 Template
    try:
        return _env.from_string(source)
    except TemplateSyntaxError as e:
        raise InvalidInputError(f"template syntax error on line {e.lineno}: {e.message}") from None


def variables(source: str) -> set[str]:
    """Names the template reads (undeclared variables)."""
    _compile(source)
    return set(meta.find_undeclared_variables(_env.parse(source)))


def render(source: str, values: dict[str, Any], where: str = "template") -> str:
    template = _compile(source)
    try:
        return template.render(**values).strip()
    except UndefinedError as e:
        missing = sorted(variables(source) - set(values))
        name = missing[0] if missing else str(e.message)
        raise InvalidInputError(
            f"undefined variable '{name}' in {where}: pass -p {name}=... or define {name} in the notebook"
        ) from None
    except SecurityError as e:
        raise InvalidInputError(f"{where} is not allowed to do that: {e}") from None
    except TemplateSyntaxError as e:
        raise InvalidInputError(f"template syntax error on line {e.lineno}: {e.message}") from None


def parse(source: str) -> nodes.Template:
    """The template's syntax tree (chains read which ``steps.NAME`` a template refers to)."""
    _compile(source)
    return _env.parse(source)


def evaluate(expression: str, values: dict[str, Any], where: str = "expression") -> Any:
    """A Jinja2 expression (``steps.split.output``) evaluated in the sandbox; keeps the value's type."""
    try:
        value = _env.compile_expression(expression, undefined_to_none=False)(**values)
    except TemplateSyntaxError as e:
        raise InvalidInputError(f"{where}: bad expression {expression.strip()!r}: {e.message}") from None
    except UndefinedError as e:
        raise InvalidInputError(f"{where}: {e.message}") from None
    except SecurityError as e:
        raise InvalidInputError(f"{where} is not allowed to do that: {e}") from None
    if isinstance(value, Undefined):
        raise InvalidInputError(f"{where}: {expression.strip()!r} is undefined")
    return value
