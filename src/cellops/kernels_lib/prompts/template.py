"""Prompt templates: Jinja2 in a sandbox with StrictUndefined, errors as one clear line.

The sandbox is also bounded: no value a template builds and no rendered prompt may exceed
MAX_CHARS. Jinja's sandbox guards attribute access and ``range`` but not size, so
``{{ ('a'*10**5)*10**5 }}`` would try to allocate 10 GB inside the kernel; here every operator,
filter and ``str`` method that can grow a value checks the size of its result before making it.
Time is bounded too: loops that print nothing (``range(10**5)`` nested) would otherwise spin for
hours, so every ``for`` iteration and every item ``range`` makes counts against MAX_STEPS per
render or evaluation, and a loop whose body is slow (big string work each turn) stops after
MAX_SECONDS.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range

from ..errors import InvalidInputError

MAX_CHARS = 1_000_000  # a prompt (or any value inside one) this long is a mistake, not a prompt
MAX_STEPS = 1_000_000  # loop iterations + range items per render: about a second of Jinja
MAX_SECONDS = 10.0  # wall time per render, checked at each loop step
_steps: ContextVar[list[float] | None] = ContextVar("template_steps", default=None)  # [left, deadline]
MAX_POWER_BITS = 4096  # ``**`` results (ints) above this many bits are refused


class TooLarge(SecurityError):
    """A template tried to build a value over MAX_CHARS (or a huge power)."""


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


def _check(n: float, what: str) -> None:
    if n > MAX_CHARS:
        raise TooLarge(f"{what} would be {int(n):,} long, over the {MAX_CHARS:,} limit for a prompt")


class TooManySteps(TooLarge):
    """A template's loops ran past MAX_STEPS or MAX_SECONDS."""


def _charge(n: int) -> None:
    left = _steps.get()
    if left is None:  # outside render/evaluate (nothing in cellops): no budget to keep
        return
    left[0] -= n
    if left[0] < 0:
        raise TooManySteps(f"its loops would run over {MAX_STEPS:,} steps, the limit for a prompt; "
                           "loop over fewer items")
    if time.monotonic() > left[1]:
        raise TooManySteps(f"its loops ran over {MAX_SECONDS:g} s, the limit for a prompt; "
                           "loop over fewer items or do less in each turn")


@contextmanager
def _budget() -> Iterator[None]:
    token = _steps.set([MAX_STEPS, time.monotonic() + MAX_SECONDS])
    try:
        yield
    finally:
        _steps.reset(token)


def _counted(items: Any) -> Iterator[Any]:
    for item in items:
        _charge(1)
        yield item


def _range(*args: int) -> range:
    r = safe_range(*args)  # the sandbox's own cap (MAX_RANGE items per range) stays
    _charge(len(r))  # nested ranges under that cap still add up
    return r


def _mul(a: Any, b: Any) -> Any:
    for seq, times in ((a, b), (b, a)):
        if _size(seq) and isinstance(times, int):
            _check(_size(seq) * max(times, 0), "a repeated value")
    return operator.mul(a, b)


def _add(a: Any, b: Any) -> Any:
    if _size(a) and _size(b):
        _check(_size(a) + _size(b), "a concatenation")
    return operator.add(a, b)


def _pow(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b > 0 and \
            b * max(abs(a).bit_length() - 1, 1) > MAX_POWER_BITS:
        raise TooLarge(f"{a} ** {b} is too large a number for a prompt")
    return operator.pow(a, b)


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, str):
        _check_format(a, b if isinstance(b, tuple) else (b,))
    return operator.mod(a, b)


def _check_format(fmt: str, args: Iterable[Any] = ()) -> None:
    """Refuse a width or precision over the limit (written out, or taken from the arguments by
    ``%*d`` / ``{:{}}``) before Python pads to it."""
    import re

    for m in re.finditer(r"\d{7,}", fmt):
        _check(int(m.group()), "a formatted field")
    if "*" in fmt or re.search(r"\{[^{}]*\{", fmt):
        for x in args:
            if isinstance(x, int) and not isinstance(x, bool):
                _check(abs(x), "a formatted field")


def _joined(items: Iterable[Any], sep: str = "") -> int:
    total = 0
    for i, x in enumerate(items):
        total += len(str(x)) + (len(sep) if i else 0)
        _check(total, "a joined string")
    return total


# str methods that can make their result much longer than their input: checked before the call
def _check_str_call(s: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if method in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        _check(args[0], f"str.{method}()")
    elif method == "expandtabs":
        _check(len(s) + s.count("\t") * (args[0] if args and isinstance(args[0], int) else 8), "str.expandtabs()")
    elif method == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        hits = s.count(args[0]) if args[0] else len(s) + 1
        _check(len(s) + hits * max(len(args[1]) - len(args[0]), 0), "str.replace()")
    elif method == "join" and args:
        _joined(list(args[0]), s)
    elif method in ("format", "format_map"):
        mapped = args[0].values() if method == "format_map" and args and isinstance(args[0], dict) else ()
        _check_format(s, [*args, *kwargs.values(), *mapped])


class _BoundedCodeGenerator(CodeGenerator):
    """``a ~ b`` compiles to a plain join that no operator hook sees; route it through the
    environment so its size is checked too. A ``for`` loop's iterable goes through
    ``environment.counted`` so each iteration is charged to the render's step budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if not getattr(node, "_counted", False):
            node.iter = nodes.Call(nodes.EnvironmentAttribute("counted"), [node.iter], [], None, None,
                                   lineno=node.lineno)
            node._counted = True  # type: ignore[attr-defined]
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "+", "**", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.binop_table.update({"*": _mul, "+": _add, "**": _pow, "%": _mod})
        for name in ("join", "center", "indent", "replace", "format"):
            self.filters[name] = _bounded_filter(self.filters[name], name)
        self.globals["range"] = _range

    counted = staticmethod(_counted)

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        _joined(parts)
        return "".join(str(p) for p in parts)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            _check_str_call(owner, getattr(method, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _bounded_filter(f: Any, name: str) -> Any:
    """A built-in filter that checks the size of what it is about to make."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        skip = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0  # eval ctx / env first
        value, rest = args[skip], args[skip + 1:]
        if name == "join":
            value = list(value)
            sep = rest[0] if rest and isinstance(rest[0], str) else kwargs.get("d", "")
            _joined(value if not (len(rest) > 1 or "attribute" in kwargs) else [], sep)
            args = (*args[:skip], value, *rest)
        elif name == "center":
            _check(rest[0] if rest and isinstance(rest[0], int) else 0, "the center filter's result")
        elif name == "indent":
            width = rest[0] if rest else kwargs.get("width", 4)
            pad = width if isinstance(width, int) else len(str(width))
            _check(len(str(value)) + (str(value).count("\n") + 1) * pad, "the indent filter's result")
        elif name == "replace" and len(rest) >= 2:
            _check_str_call(str(value), "replace", (str(rest[0]), str(rest[1])), {})
        elif name == "format":
            _check_format(str(value), [*rest, *kwargs.values()])
        out = f(*args, **kwargs)
        _check(_size(out), f"the {name} filter's result")
        return out

    if hasattr(f, "jinja_pass_arg"):
        bounded.jinja_pass_arg = f.jinja_pass_arg  # type: ignore[attr-defined]
    bounded.__name__ = getattr(f, "__name__", name)
    return bounded


_env = BoundedSandbox(undefined=StrictUndefined, keep_trailing_newline=False)


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
    """Render ``source`` with ``values``; every failure is one InvalidInputError naming ``where``."""
    template = _compile(source)
    try:
        return _render_bounded(template, values).strip()
    except UndefinedError as e:
        raise InvalidInputError(_undefined_message(source, values, where, e)) from None
    except TooLarge as e:
        raise InvalidInputError(f"{where} is too large to render: {e}") from None
    except SecurityError as e:
        raise InvalidInputError(f"{where} is not allowed to do that: {e}") from None
    except TemplateSyntaxError as e:
        raise InvalidInputError(f"template syntax error on line {e.lineno}: {e.message}") from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError,
            RecursionError, MemoryError) as e:  # the template's own mistake, e.g. {{ 1/0 }}
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InvalidInputError(f"{where} failed to render: {type(e).__name__}"
                                + (f": {msg}" if msg else "") + "; fix the template or its variables") from None


def parse(source: str) -> nodes.Template:
    """The template's syntax tree (chains read which ``steps.NAME`` a template refers to)."""
    _compile(source)
    return _env.parse(source)


def evaluate(expression: str, values: dict[str, Any], where: str = "expression") -> Any:
    """A Jinja2 expression (``steps.split.output``) evaluated in the sandbox; keeps the value's type."""
    try:
        with _budget():
            value = _env.compile_expression(expression, undefined_to_none=False)(**values)
    except TemplateSyntaxError as e:
        raise InvalidInputError(f"{where}: bad expression {expression.strip()!r}: {e.message}") from None
    except UndefinedError as e:
        raise InvalidInputError(f"{where}: {e.message}") from None
    except TooLarge as e:
        raise InvalidInputError(f"{where} is too large to evaluate: {e}") from None
    except SecurityError as e:
        raise InvalidInputError(f"{where} is not allowed to do that: {e}") from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError,
            RecursionError, MemoryError) as e:
        raise InvalidInputError(f"{where}: {expression.strip()!r} failed: {type(e).__name__}: {e}") from None
    if isinstance(value, Undefined):
        raise InvalidInputError(f"{where}: {expression.strip()!r} is undefined")
    return value


def _render_bounded(template: Any, values: dict[str, Any]) -> str:
    """Render piece by piece, stopping as soon as the output passes MAX_CHARS (a loop of small
    pieces is as able to fill memory as one big value)."""
    parts, total = [], 0
    with _budget():
        for piece in template.generate(**values):
            total += len(piece)
            _check(total, "the rendered prompt")
            parts.append(piece)
    return "".join(parts)


def _undefined_message(source: str, values: dict[str, Any], where: str, e: UndefinedError) -> str:
    missing = sorted(variables(source) - set(values))
    if missing:
        name = missing[0]
        return f"undefined variable '{name}' in {where}: pass -p {name}=... or define {name} in the notebook"
    path = _undefined_path(source, values)
    if path is not None:
        found, attr = path
        return (f"'{found}' has no attribute or key '{attr}' in {where} (so '{found}.{attr}' is "
                f"undefined); check the variable's value or the template")
    return f"undefined value in {where} ({e.message}); check the template's variables"


def _undefined_path(source: str, values: dict[str, Any]) -> tuple[str, str] | None:
    """The first ``a.b.c`` / ``a['b']`` chain over a given variable that hits an undefined step:
    (the defined part, the missing name)."""
    for node in _env.parse(source).find_all((nodes.Getattr, nodes.Getitem)):
        chain: list[Any] = []
        cur: Any = node
        while isinstance(cur, (nodes.Getattr, nodes.Getitem)):
            key = cur.attr if isinstance(cur, nodes.Getattr) else \
                (cur.arg.value if isinstance(cur.arg, nodes.Const) else None)
            if key is None:
                break
            chain.append(key)
            cur = cur.node
        if not isinstance(cur, nodes.Name) or cur.name not in values or len(chain) == 0:
            continue
        obj, label = values[cur.name], cur.name
        for key in reversed(chain):
            nxt = _env.getattr(obj, key) if isinstance(key, str) else _env.getitem(obj, key)
            if isinstance(nxt, StrictUndefined):
                return label, str(key)
            obj, label = nxt, f"{label}.{key}"
    return None
