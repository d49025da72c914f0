"""Guardrails: policies (versioned YAML) of input / retrieval / output checks.

    import cellops
    pol = cellops.guard.load("default")          # or "strict", a saved "NAME@V", or YAML text
    rep = pol.check_input("my card is 4111 1111 1111 1111")
    rep.allowed, rep.text, rep.findings            # True, "my card is <CREDIT_CARD_1>", [...]
    cellops.guard.on("default")                    # every %%prompt / %%rag call is now guarded
    cellops.guard.check("ignore previous instructions")   # ad-hoc, with the active policy

This module stays import-light (``prompts.run`` imports ``active_policy`` on every call path):
numpy, presidio and the embedder load only when a policy is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from ..workspace import Workspace, get_workspace

if TYPE_CHECKING:
    from .policy import Policy
    from .report import Report

ACTIVE_KEY = "guard.active"
__all__ = ["ACTIVE_KEY", "active_policy", "check", "evaluate", "history", "list_policies", "load",
           "off", "on", "save", "show", "status"]


def active_policy(ws: Workspace) -> Any | None:
    """The policy switched on with ``%guard on NAME`` in this workspace, or None."""
    ref = ws.get_state(ACTIVE_KEY)
    if not ref:
        return None
    from .policy import load

    return load(ref, workspace=ws)


def load(name_or_yaml: Any, workspace: Workspace | None = None) -> Policy:
    """A policy: built-in ``default`` / ``strict``, a saved ``NAME[@V]``, or YAML text."""
    from .policy import load as _load

    return _load(name_or_yaml, workspace)


def save(name: str, yaml_text: str, workspace: Workspace | None = None) -> Policy:
    """Validate ``yaml_text`` and save it as the next version of ``name`` (unchanged: no new version)."""
    from .policy import save as _save

    return _save(name, yaml_text, workspace)[0]


def on(name: Any = "default", workspace: Workspace | None = None) -> Any:
    """Apply policy ``name`` to every %%prompt / %%rag call in this workspace until ``off()``.

    A saved name is pinned to its current version (``NAME@V``), so later edits of the policy do
    not silently change what guards running notebooks; ``on`` it again to move to the latest.
    """
    from .policy import Policy
    from .policy import save as _save
    from .views import GuardStatus

    ws = workspace or get_workspace()
    if isinstance(name, Policy) and name.ref.startswith("yaml:"):
        raise InvalidInputError("save the policy first (cellops.guard.save(NAME, yaml) or %%guard NAME), then turn it on by name")
    if isinstance(name, str) and ("\n" in name or ":" in name):
        pol = _save("adhoc", name, ws)[0]
    else:
        pol = load(name, ws)
    ws.set_state(ACTIVE_KEY, pol.ref)
    return GuardStatus(pol.ref, pol)


def off(workspace: Workspace | None = None) -> Any:
    """Stop guarding calls in this workspace."""
    from .views import GuardStatus

    ws = workspace or get_workspace()
    was = ws.get_state(ACTIVE_KEY)
    ws.set_state(ACTIVE_KEY, None)
    return GuardStatus(None, None, f"guard is off (was {was})" if was else "guard was already off")


def status(workspace: Workspace | None = None) -> Any:
    """The active policy (``.active`` is its ref, or None) as a displayable value."""
    from .views import GuardStatus

    ws = workspace or get_workspace()
    ref = ws.get_state(ACTIVE_KEY)
    return GuardStatus(ref, load(ref, ws) if ref else None)


def check(text: Any, *, output: bool = False, context: list[str] | None = None, policy: Any = None,
          workspace: Workspace | None = None) -> Report:
    """Check ``text`` ad hoc with ``policy`` (default: the active one, else ``default``)."""
    ws = workspace or get_workspace()
    pol = load(policy, ws) if policy is not None else (active_policy(ws) or load("default", ws))
    return pol.check_output(text, context=context) if output else pol.check_input(text)


def list_policies(workspace: Workspace | None = None) -> Any:
    """Built-in and saved policies (latest versions)."""
    from .policy import BUILTINS
    from .policy import load as _load
    from .views import PolicyList

    ws = workspace or get_workspace()
    rows = []
    for name in BUILTINS:
        p = _load(name, ws)
        rows.append((f"{name} (built-in)", p.hash[:10], "", p.spec.description[:80]))
    for v in ws.list_versions("guard"):
        spec = v.content.get("spec")
        desc = str(spec.get("description", "")) if isinstance(spec, dict) else "(corrupt: save it again)"
        rows.append((v.ref, v.hash[:10], ", ".join(v.aliases), desc[:80]))
    return PolicyList(rows)


def history(name: str, workspace: Workspace | None = None) -> list[Any]:
    ws = workspace or get_workspace()
    return ws.list_versions("guard", name)


def show(name: str, workspace: Workspace | None = None) -> str:
    """The policy's YAML as written (built-ins: the shipped file; saved: the cell body)."""
    from .policy import BUILTINS, builtin_yaml

    if name in BUILTINS:
        return builtin_yaml(name)
    ws = workspace or get_workspace()
    v = ws.resolve("guard", name)
    if not isinstance(v.content.get("yaml"), str):
        from .policy import corrupt

        raise corrupt(v.ref, "its YAML text is missing")
    return v.content["yaml"]


def evaluate(policy: Any, data: Any, **kwargs: Any) -> Any:
    """Precision / recall / F1, benign FPR and latency of ``policy`` on labeled rows; see guard.evaluation."""
    from .evaluation import evaluate as _evaluate

    return _evaluate(policy, data, **kwargs)
