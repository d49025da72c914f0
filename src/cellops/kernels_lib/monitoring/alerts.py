"""Alert rules over the dashboard figures: ``cellops monitor check NAME --rules rules.yaml``.

    reference: 20          # drift reference: the first 20 requests (default 50), or questions@2
    window: 20             # current window: the last 20 after them (default: reference)
    rules:
      - name: inputs drifted
        metric: drift.input.p_value
        op: "<"
        value: 0.01
      - metric: overall.latency_p95_s
        op: ">"
        value: 2.5
      - metric: ab.winner
        op: "=="
        value: b

``metric`` is a dotted path into ``cellops monitor NAME --json``. A rule whose figure is missing
(not enough data yet) does not trip and is reported as such. ``check`` returns the verdicts; the
CLI exits 1 when any rule trips and runs ``--on-alert CMD`` with the tripped rules as JSON in
``CELLOPS_ALERTS``, so it works as a scheduled step.
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import html
from ..errors import InvalidInputError, NotFoundError
from ..workspace import Workspace, get_workspace
from .dashboard import figures

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Rule:
    metric: str
    op: str
    value: Any
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.metric} {self.op} {self.value}"


@dataclass
class Rules:
    rules: list[Rule]
    reference: int | str = 50  # a request count or a dataset version NAME@V[:SPLIT]
    window: int | None = None


def parse_rules(text: str, where: str = "rules") -> Rules:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidInputError(f"{where} is not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise InvalidInputError(f"{where} needs a 'rules:' list of {{metric, op, value}} entries")
    out = []
    for i, r in enumerate(data["rules"]):
        if not isinstance(r, dict) or not {"metric", "op", "value"} <= set(r):
            raise InvalidInputError(f"rule {i + 1} in {where} needs metric, op and value (got {r!r})")
        if r["op"] not in OPS:
            raise InvalidInputError(f"rule {i + 1} in {where}: op {r['op']!r} is not one of {' '.join(OPS)}")
        unknown = set(r) - {"metric", "op", "value", "name"}
        if unknown:
            raise InvalidInputError(f"rule {i + 1} in {where}: unknown key(s) {', '.join(sorted(unknown))}")
        out.append(Rule(str(r["metric"]), r["op"], r["value"], str(r.get("name", ""))))
    from . import parse_reference

    try:
        window = int(data["window"]) if data.get("window") else None
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where}: window is a request count") from None
    return Rules(out, parse_reference(data.get("reference", 50)), window)


def lookup(data: dict[str, Any], path: str) -> Any:
    cur: Any = data
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _known(data: dict[str, Any], path: str) -> bool:
    """Is ``path`` a figure the dashboard has (even if its value is missing right now)?"""
    head = path.split(".")[0]
    return head in data


@dataclass
class Verdict:
    rule: Rule
    value: Any
    tripped: bool
    note: str = ""


@dataclass
class CheckResult:
    app: str
    verdicts: list[Verdict]
    figures: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def tripped(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.tripped]

    def to_json(self) -> str:
        return json.dumps([{"rule": v.rule.label, "metric": v.rule.metric, "value": v.value,
                            "tripped": v.tripped, "note": v.note} for v in self.tripped], default=str)

    def _rows(self) -> list[tuple[Any, ...]]:
        return [(v.rule.label, "ALERT" if v.tripped else ("no data" if v.note else "ok"),
                 "-" if v.value is None else v.value) for v in self.verdicts]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cols = ("rule", "state", "value")
        head = f"{self.app}: {len(self.tripped)} of {len(self.verdicts)} rules tripped"
        return {"text/plain": head + "\n" + html.text_table(cols, self._rows()),
                "text/html": html.box("monitor check", html.table(cols, self._rows()), head)}


def check(app: str, rules: Rules | str | os.PathLike[str], workspace: Workspace | None = None,
          since: float | None = None) -> CheckResult:
    """Evaluate ``rules`` (a Rules, or a YAML file path) on the app's current figures."""
    ws = workspace or get_workspace()
    if not isinstance(rules, Rules):
        path = Path(rules)
        if not path.is_file():
            raise NotFoundError(f"rules file {path} does not exist")
        rules = parse_rules(path.read_text(encoding="utf-8"), str(path))
    data = figures(app, since, rules.reference, rules.window, workspace=ws)
    verdicts = []
    for r in rules.rules:
        if not _known(data, r.metric):
            raise InvalidInputError(f"rule '{r.label}': no figure '{r.metric}'; see cellops monitor {app} --json")
        value = lookup(data, r.metric)
        if value is None:
            verdicts.append(Verdict(r, None, False, "not enough data"))
            continue
        try:
            tripped = bool(OPS[r.op](value, r.value))
        except TypeError:
            raise InvalidInputError(f"rule '{r.label}': cannot compare {value!r} with {r.value!r}") from None
        verdicts.append(Verdict(r, value, tripped))
    return CheckResult(app, verdicts, data)


def run_hook(cmd: str, result: CheckResult) -> int:
    """The user's --on-alert shell command, with the tripped rules in CELLOPS_ALERTS."""
    env = dict(os.environ, CELLOPS_ALERTS=result.to_json(), CELLOPS_APP=result.app)
    return subprocess.run(cmd, shell=True, env=env, timeout=300).returncode
