"""Policy YAML -> a validated, fully resolved ``PolicySpec``.

Every mistake is one line naming what is wrong and listing what is valid, so a typo in a
``%%guard`` cell is caught when the cell runs, not when a prompt is called later.

    description: what this policy is for
    extends: default          # optional: start from a built-in or a saved policy
    max_chars: 100000         # longer texts are blocked (they cannot be checked in bounded time)
    input:
      - check: injection      # or just "- injection" for the defaults
        action: block         # block | redact | warn | log | off (off removes an inherited check)
        threshold: 0.6
      - check: pii
        action: redact
        entities: [EMAIL_ADDRESS, PHONE_NUMBER]   # check options sit beside check/action/threshold
    retrieval: [...]
    output: [...]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from .checks import RAILS, checks, load_builtins

ACTIONS = ("block", "redact", "warn", "log", "off")
TOP_KEYS = ("description", "extends", "max_chars", *RAILS)
ITEM_KEYS = ("check", "id", "action", "threshold")
DEFAULT_MAX_CHARS = 100_000


@dataclass(frozen=True)
class CheckSpec:
    id: str
    check: str
    action: str
    threshold: float
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "check": self.check, "action": self.action,
                "threshold": self.threshold, **self.options}


@dataclass(frozen=True)
class PolicySpec:
    description: str
    max_chars: int
    rails: dict[str, tuple[CheckSpec, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "max_chars": self.max_chars,
                **{r: [c.to_dict() for c in self.rails.get(r, ())] for r in RAILS}}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def parse_yaml(text: str) -> dict[str, Any]:
    """YAML text -> mapping; empty or malformed -> InvalidInputError with the line."""
    import yaml

    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("empty guard policy: give YAML with input:, retrieval: and/or output: lists "
                                "of checks (or 'extends: default')")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InvalidInputError(f"guard policy is not valid YAML{where}: {problem}") from None
    if raw is None:  # only comments
        raise InvalidInputError("empty guard policy: give YAML with input:, retrieval: and/or output: lists "
                                "of checks (or 'extends: default')")
    if not isinstance(raw, dict):
        raise InvalidInputError(f"guard policy must be a YAML mapping with keys {', '.join(TOP_KEYS)}; "
                                f"got {type(raw).__name__}")
    return raw


def validate(raw: dict[str, Any], resolve_base: Callable[[str], PolicySpec] | None = None) -> PolicySpec:
    """Check every key, check name, option, threshold and action; resolve ``extends``."""
    load_builtins()
    unknown = [k for k in raw if k not in TOP_KEYS]
    if unknown:
        raise InvalidInputError(f"unknown policy key '{unknown[0]}'; valid keys: {', '.join(TOP_KEYS)}")
    base: PolicySpec | None = None
    if raw.get("extends") is not None:
        if not isinstance(raw["extends"], str) or resolve_base is None:
            raise InvalidInputError("extends: give the name of a built-in or saved policy, e.g. extends: default")
        base = resolve_base(raw["extends"])
    if base is None and not any(raw.get(r) for r in RAILS):
        raise InvalidInputError("guard policy has no checks: add an input:, retrieval: or output: list "
                                "(or 'extends: default')")
    max_chars = raw.get("max_chars", base.max_chars if base else DEFAULT_MAX_CHARS)
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise InvalidInputError(f"max_chars must be a whole number >= 1, got {max_chars!r}")
    desc = raw.get("description", base.description if base else "")
    rails: dict[str, tuple[CheckSpec, ...]] = {}
    for rail in RAILS:
        items = raw.get(rail) or []
        if not isinstance(items, list):
            raise InvalidInputError(f"'{rail}:' must be a list of checks (each '- check: NAME ...')")
        merged = {c.id: c for c in (base.rails.get(rail, ()) if base else ())}
        for i, item in enumerate(items):
            spec = _item(rail, i, item)
            if spec.action == "off":
                merged.pop(spec.id, None)
            else:
                merged[spec.id] = spec
        rails[rail] = tuple(merged.values())
    return PolicySpec(str(desc or ""), max_chars, rails)


def _item(rail: str, i: int, item: Any) -> CheckSpec:
    where = f"{rail}[{i}]"
    if isinstance(item, str):
        item = {"check": item}
    if not isinstance(item, dict) or "check" not in item:
        raise InvalidInputError(f"{where}: each check is a mapping with 'check: NAME' (or just the name); "
                                f"checks: {', '.join(checks.names())}")
    name = item["check"]
    if not isinstance(name, str) or name not in checks.names():
        raise InvalidInputError(f"{where}: unknown check '{name}'; valid checks: {', '.join(checks.names())}")
    cls = checks.get(name)
    if rail not in cls.rails:
        raise InvalidInputError(f"{where}: check '{name}' cannot run on the {rail} rail; it runs on: "
                                f"{', '.join(cls.rails)}")
    action = item.get("action", cls.default_action)
    if action is False:  # YAML 1.1 reads a bare `off` (and `no`) as false
        action = "off"
    if action not in ACTIONS:
        raise InvalidInputError(f"{where}: unknown action '{action}' for check '{name}'; valid actions: "
                                f"{', '.join(ACTIONS)}")
    if action == "redact" and not cls.can_redact:
        redactable = [n for n in checks.names() if checks.get(n).can_redact]
        raise InvalidInputError(f"{where}: check '{name}' has no spans to redact; use block, warn or log "
                                f"(redact works with: {', '.join(redactable)})")
    thr = item.get("threshold", cls.default_threshold)
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0.0 <= float(thr) <= 1.0:
        raise InvalidInputError(f"{where}: threshold of check '{name}' must be a number between 0 and 1, "
                                f"got {thr!r}")
    ident = item.get("id", name)
    if not isinstance(ident, str) or not ident:
        raise InvalidInputError(f"{where}: id must be a non-empty string")
    opts = cls.validate_options({k: v for k, v in item.items() if k not in ITEM_KEYS}, where)
    return CheckSpec(ident, name, action, float(thr), opts)


def from_dict(d: dict[str, Any]) -> PolicySpec:
    """A spec stored by ``PolicySpec.to_dict`` (already resolved) back to a PolicySpec."""
    raw = {k: v for k, v in d.items() if k in TOP_KEYS}
    return validate(raw)
