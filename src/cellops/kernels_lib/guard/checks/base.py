"""What a guard check is, and the registry every check (built-in or plugin) registers in.

A check class declares its options (validated when a policy is loaded, so a typo is caught in
the ``%%guard`` cell, not at call time), the rails it can run on, its default threshold and
action, whether its spans can be redacted, and how it behaves on a stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ...errors import InvalidInputError
from ...registry import Registry
from ...workspace import Workspace
from ..embed import TextCtx
from ..report import Verdict

RAILS = ("input", "retrieval", "output")


@dataclass(frozen=True)
class Opt:
    """One option of a check: a validator (value -> value, raises ValueError), default, help."""

    kind: str
    default: Any
    help: str


def _str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError("a list of strings")
    return v


def _float01(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise ValueError("a number between 0 and 1")
    return float(v)


def _pos_int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError("a whole number >= 0")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("true or false")
    return v


def _str(v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        raise ValueError("a string")
    return v


def _float_map(v: Any) -> dict[str, float]:
    if not isinstance(v, dict):
        raise ValueError("a mapping of name: threshold (0..1)")
    return {str(k): _float01(x) for k, x in v.items()}


def _examples_map(v: Any) -> dict[str, list[str]]:
    if not isinstance(v, dict) or not all(isinstance(x, list) and x for x in v.values()):
        raise ValueError("a mapping of topic name: [example utterances]")
    return {str(k): _str_list(x) for k, x in v.items()}


def _any(v: Any) -> Any:
    return v


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "str_list": _str_list, "float01": _float01, "int": _pos_int, "bool": _bool, "str": _str,
    "float_map": _float_map, "examples": _examples_map, "any": _any,
}


class Check:
    """Base class. Subclasses set the ClassVars and implement :meth:`run`."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    rails: ClassVar[tuple[str, ...]] = RAILS
    options: ClassVar[dict[str, Opt]] = {}
    default_threshold: ClassVar[float] = 0.5
    default_action: ClassVar[str] = "block"
    can_redact: ClassVar[bool] = False
    uses_embedding: ClassVar[bool] = False
    needs_context: ClassVar[bool] = False
    # How a stream checker runs it: "window" (cheap; on the tail of the text as it grows),
    # "sentence" (on each completed sentence), or "final" (only on the full text).
    stream: ClassVar[str] = "final"

    def __init__(self, opts: dict[str, Any], threshold: float, ws: Workspace | None) -> None:
        self.opts = opts
        self.threshold = threshold
        self.ws = ws
        self.setup()

    def setup(self) -> None:
        """Prepare expensive state (exemplars, compiled patterns); called once per policy load."""

    def run(self, ctx: TextCtx) -> Verdict:
        raise NotImplementedError

    @classmethod
    def validate_options(cls, given: dict[str, Any], where: str) -> dict[str, Any]:
        """Defaults filled in; unknown option or bad value -> one line naming it and the valid ones."""
        unknown = sorted(set(given) - set(cls.options))
        if unknown:
            valid = ", ".join(sorted(cls.options)) or "(none)"
            raise InvalidInputError(
                f"{where}: unknown option '{unknown[0]}' for check '{cls.name}'; valid options: "
                f"{valid}, plus threshold, action, id"
            )
        out = {}
        for key, opt in cls.options.items():
            if key not in given:
                out[key] = opt.default
                continue
            try:
                out[key] = VALIDATORS[opt.kind](given[key])
            except ValueError as e:
                raise InvalidInputError(
                    f"{where}: option '{key}' of check '{cls.name}' must be {e}; got {given[key]!r}"
                ) from None
        return out


checks: Registry[type[Check]] = Registry("guard check", "guard_checks")


def register(cls: type[Check]) -> type[Check]:
    checks.register(cls.name, cls)
    return cls
