"""What a running step sees: the workspace, the trace, the models, and the template values.

Values are ``{"inputs": {...}, "steps": {NAME: {"output": ..., "skipped": bool}}}`` plus a map
step's item variable. A string that is exactly one ``{{ expression }}`` keeps its value's type
(a list stays a list for a python or map step); any other string renders as a template.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CellopsError, InvalidInputError, NotFoundError
from ..prompts import template as tpl
from ..workspace import Workspace

Resolver = Callable[[str], Callable[..., Any]]
_WHOLE = re.compile(r"^\s*\{\{(.*?)\}\}\s*$", re.S)


class StepStopped(CellopsError):
    """A guard (a guard step, or the active policy around a model step) blocked the chain."""

    def __init__(self, step: str, text: str) -> None:
        super().__init__(f"step '{step}' was blocked: {text}")
        self.step, self.text = step, text


def import_resolver(ref: str) -> Callable[..., Any]:
    """``module:function`` (``module:Class.method`` too) -> the callable."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise NotFoundError(f"python function '{ref}' must be written module:function (a bare name "
                            "works in a notebook, where %chain looks it up in the namespace)")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise NotFoundError(f"cannot import module '{module}' for '{ref}': {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise NotFoundError(f"module '{module}' has no '{attr}' (for '{ref}')")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidInputError(f"'{ref}' is not a function")
    return obj


def namespace_resolver(namespace: dict[str, Any]) -> Resolver:
    """Bare names from ``namespace`` (a notebook's user_ns), else ``module:function``."""
    def resolve(ref: str) -> Callable[..., Any]:
        if ":" not in ref:
            fn = namespace.get(ref)
            if fn is None:
                raise NotFoundError(f"no function named '{ref}' in the notebook; define it first "
                                    "or write module:function")
            if not callable(fn):
                raise InvalidInputError(f"'{ref}' in the notebook is not a function")
            return fn
        return import_resolver(ref)
    return resolve


@dataclass
class RunContext:
    ws: Workspace
    trace: Any
    model: str | None = None  # the run's model (chains.run(model=...), a compare column)
    chain_model: str | None = None  # the spec's model:
    resolver: Resolver = import_resolver
    cache: bool = True
    stats: Any = None  # prompts.cache.CacheStats shared by a grid
    llms: dict[str, Any] = field(default_factory=dict)

    def model_for(self, options: dict[str, Any]) -> str | None:
        """A step's own model wins, then the run's, then the chain's (None: the prompt's/default)."""
        return options.get("model") or self.model or self.chain_model

    def llm(self, uri: str) -> Any:
        if uri not in self.llms:
            from ..models import get_llm
            from ..prompts.cache import CachedLLM

            self.llms[uri] = CachedLLM(get_llm(uri, self.ws), self.ws, self.stats, enabled=self.cache)
        return self.llms[uri]


def resolve(value: Any, values: dict[str, Any], where: str) -> Any:
    """Render every string inside ``value`` (a whole ``{{ expr }}`` keeps its type)."""
    if isinstance(value, str):
        m = _WHOLE.match(value)
        if m and "{{" not in m.group(1) and "{%" not in value:
            return tpl.evaluate(m.group(1), values, where)
        return tpl.render(value, values, where) if ("{{" in value or "{%" in value) else value
    if isinstance(value, dict):
        return {k: resolve(v, values, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, values, where) for v in value]
    return value


def as_text(value: Any) -> str:
    """A value as the text a model, a guard or an assertion sees (JSON for structures)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def preview(value: Any, limit: int | None = None) -> str:
    """A value as text, clipped like every span attribute (``tracking.genai.clip``) or to ``limit``."""
    from ..tracking.genai import clip

    text = as_text(value)
    if limit is None:
        return clip(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
