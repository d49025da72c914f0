"""Chain versions: the validated spec, content-addressed and immutable (like prompt versions).

The version's content is the parsed spec, so the hash covers what the chain does: re-indenting
the YAML or saving the same spec as a dict makes no new version. The YAML as written is kept as
the version's artifact (``chain.yaml``) for ``%chain show``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from .. import html
from ..errors import JobError
from ..workspace import Version, Workspace, check_name, get_workspace
from . import spec as specs

KIND = "chain"
YAML_FILE = "chain.yaml"  # the YAML as written, for %chain show


@dataclass(frozen=True)
class Chain:
    name: str
    version: int
    hash: str
    spec: specs.ChainSpec
    yaml: str
    aliases: tuple[str, ...] = ()
    created_at: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def params(self) -> dict[str, Any]:
        """What the compare grid reads as a column's default model (chains: the spec's model)."""
        return {"model": self.spec.model} if self.spec.model else {}

    @classmethod
    def from_version(cls, v: Version, ws: Workspace) -> Chain:
        path = ws.artifact_dir(KIND, v.name, v.version) / YAML_FILE
        text = path.read_text(encoding="utf-8") if path.is_file() else _dump(v.content["spec"])
        return cls(v.name, v.version, v.hash, specs.parse(v.content["spec"], v.name), text,
                   v.aliases, v.created_at)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        rows = [(s.name, s.label, s.kind, ", ".join(s.reads) or "-", s.when or "")
                for s in self.spec.steps]
        cols = ("step", "type", "kind", "reads", "when")
        meta = (f"hash {self.hash[:10]} · inputs {', '.join(self.spec.inputs) or '-'}"
                + (f" · aliases {', '.join(self.aliases)}" if self.aliases else ""))
        return {"text/plain": f"{self.ref}  {meta}\n" + html.text_table(cols, rows),
                "text/html": html.box(f"chain {self.ref}", html.table(cols, rows), meta)}


def save(name: str, source: str | dict[str, Any],
         workspace: Workspace | None = None) -> tuple[Chain, bool]:
    """Validate ``source`` (YAML text or a dict) and save it; nothing is saved when it is invalid."""
    ws = workspace or get_workspace()
    check_name(name)
    spec = specs.parse(source, name)
    text = source if isinstance(source, str) else _dump(spec.doc)
    # JSON round trip: the stored spec is exactly what a reload parses (no YAML-only types)
    doc = json.loads(json.dumps(spec.doc, default=str))
    staging = ws.staging_dir()
    (staging / YAML_FILE).write_text(text.strip() + "\n", encoding="utf-8")
    v, created = ws.save_version(KIND, name, {"spec": doc}, artifact=staging)
    chain = Chain.from_version(v, ws)
    vouch(chain, ws)  # saved by this user here: its module:function steps may be imported
    return chain, created


# -- consent for the Python code a chain imports (kernels_lib/trust.py, kind "chains") ----------
TRUST_KIND = "chains"


def imports(chain: Chain) -> list[str]:
    """The ``module:function`` refs its python and tool steps import (bare names come from the
    notebook's namespace, which is the user's own)."""
    steps = [x for s in chain.spec.steps for x in ([s, s.sub] if s.sub is not None else [s])]
    refs = [r for s in steps if s.type in ("python", "tool")
            for r in ([s.arg] if isinstance(s.arg, str) else s.arg)]
    return [r for r in refs if ":" in r]


def vouch(chain: Chain, ws: Workspace) -> None:
    from .. import trust

    trust.trust(ws.root, [(f"chain {chain.ref}", {"hash": chain.hash})], kind=TRUST_KIND)


def refuse_foreign_imports(chain: Chain, ws: Workspace) -> None:
    """A chain that imports Python functions runs only if this user saved (or trusted) that very
    version on this machine: a cloned workspace's ``python: os:system`` step, served, would run
    what any HTTP client sends."""
    from .. import trust

    refs = imports(chain)
    if refs and not trust.is_trusted(ws.root, f"chain {chain.ref}", {"hash": chain.hash}, kind=TRUST_KIND):
        raise JobError(f"chain {chain.ref} imports Python code ({', '.join(refs)}) and was not saved by you on "
                       f"this machine (a cloned workspace?): read it with `%chain show {chain.ref}`, then "
                       f"`cellops chain trust {chain.ref}` to run it")


def trust_version(ref: str, workspace: Workspace | None = None) -> Chain:
    """``cellops chain trust NAME@V``: this user vouches for the code that version imports."""
    ws = workspace or get_workspace()
    chain = get(ref, ws)
    vouch(chain, ws)
    return chain


def _dump(doc: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def get(ref: str, workspace: Workspace | None = None) -> Chain:
    ws = workspace or get_workspace()
    return Chain.from_version(ws.resolve(KIND, ref), ws)


def history(name: str, workspace: Workspace | None = None) -> list[Chain]:
    ws = workspace or get_workspace()
    return [Chain.from_version(v, ws) for v in ws.list_versions(KIND, name)]


def list_chains(workspace: Workspace | None = None) -> list[Chain]:
    """The latest version of every chain."""
    ws = workspace or get_workspace()
    return [get(n, ws) for n in ws.names(KIND)]


def alias(ref: str, name: str, workspace: Workspace | None = None) -> Chain:
    ws = workspace or get_workspace()
    return Chain.from_version(ws.set_alias(KIND, ref, name), ws)


class ChainList:
    """``%chain list`` / ``history``: one row per chain version."""

    COLUMNS = ("chain", "hash", "aliases", "steps", "inputs", "created")

    def __init__(self, chains: list[Chain]) -> None:
        self.chains = chains
        self.rows = [(c.ref, c.hash[:10], ", ".join(c.aliases), len(c.spec.steps),
                      ", ".join(c.spec.inputs) or "-",
                      dt.datetime.fromtimestamp(c.created_at).strftime("%Y-%m-%d %H:%M"))
                     for c in chains]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        if not self.rows:
            return {"text/plain": "(no chains yet)", "text/html": "<i>no chains yet</i>"}
        return {"text/plain": html.text_table(self.COLUMNS, self.rows),
                "text/html": html.box("chains", html.table(self.COLUMNS, self.rows))}
