"""Prompt versions: template + system + default params, content-addressed and immutable."""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from typing import Any

from ..workspace import Version, Workspace, check_name, content_hash, get_workspace
from . import template as tpl

KIND = "prompt"


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    hash: str
    template: str
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # default generation params + model
    tests: list[dict[str, Any]] = field(default_factory=list)  # test cases (prompt loop)
    aliases: tuple[str, ...] = ()
    created_at: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def from_version(cls, v: Version) -> Prompt:
        c = v.content
        return cls(v.name, v.version, v.hash, c["template"], c.get("system"), c.get("params", {}),
                   c.get("tests", []), v.aliases, v.created_at)

    def __str__(self) -> str:
        return self.template


def save(name: str, template: str, system: str | None = None, params: dict[str, Any] | None = None,
         tests: list[dict[str, Any]] | None = None, workspace: Workspace | None = None) -> tuple[Prompt, bool]:
    """Save a prompt; a new version is made only when the content changed. Returns (prompt, created)."""
    ws = workspace or get_workspace()
    v, created = ws.save_version(KIND, name, _content(template, system, params, tests))
    return Prompt.from_version(v), created


def pending(name: str, template: str, system: str | None = None, params: dict[str, Any] | None = None,
            tests: list[dict[str, Any]] | None = None, workspace: Workspace | None = None) -> Prompt:
    """The version :func:`save` would make (or keep), without saving it: run it first, so that a
    cell that fails (bad model, params or variables) leaves no new version behind."""
    ws = workspace or get_workspace()
    content = _content(template, system, params, tests)
    h = content_hash(content)
    have = ws.list_versions(KIND, check_name(name))
    if have and have[-1].hash == h:
        return Prompt.from_version(have[-1])
    nxt = Version(KIND, name, (have[-1].version + 1) if have else 1, h, content, time.time())
    return Prompt.from_version(nxt)


def _content(template: str, system: str | None, params: dict[str, Any] | None,
             tests: list[dict[str, Any]] | None) -> dict[str, Any]:
    tpl.variables(template)  # syntax errors surface now, with their line
    if system:
        tpl.variables(system)
    content: dict[str, Any] = {"template": template.strip(), "system": system or None,
                               "params": dict(params or {})}
    if tests:
        content["tests"] = tests
    return content


def get(ref: str, workspace: Workspace | None = None) -> Prompt:
    return Prompt.from_version((workspace or get_workspace()).resolve(KIND, ref))


def history(name: str, workspace: Workspace | None = None) -> list[Prompt]:
    return [Prompt.from_version(v) for v in (workspace or get_workspace()).list_versions(KIND, name)]


def list_prompts(workspace: Workspace | None = None) -> list[Prompt]:
    """The latest version of every prompt."""
    ws = workspace or get_workspace()
    return [get(n, ws) for n in ws.names(KIND)]


def alias(ref: str, name: str, workspace: Workspace | None = None) -> Prompt:
    return Prompt.from_version((workspace or get_workspace()).set_alias(KIND, ref, name))


def _as_text(p: Prompt) -> list[str]:
    lines = [f"system: {p.system or ''}", f"params: {p.params}", "---"]
    return lines + p.template.splitlines()


def diff(ref_a: str, ref_b: str, workspace: Workspace | None = None) -> str:
    """A unified diff between two prompt versions (system, params and template)."""
    a, b = get(ref_a, workspace), get(ref_b, workspace)
    return "\n".join(difflib.unified_diff(_as_text(a), _as_text(b), a.ref, b.ref, lineterm=""))
