"""Test / compare cases: rows of template variables, optionally with assertions.

A case is either a flat row of variables (a CSV/JSONL line, a DataFrame row, a dict) or a
promptfoo-style item ``{"vars": {...}, "assert": [...], "description": "..."}``. Sources: a
.jsonl / .json / .csv / .yaml file, a DataFrame, or a list of dicts. Each case remembers where
it came from ("line 4 of cases.csv") so a bad row is named in the error.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, NotFoundError
from ..workspace import Workspace

STRUCTURED_KEYS = {"vars", "assert", "description"}


@dataclass
class Case:
    number: int  # 1-based position among the cases
    where: str  # "line 4 of cases.csv", "row 3 of the DataFrame", ...
    vars: dict[str, Any]
    asserts: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""

    @property
    def label(self) -> str:
        return self.description or ", ".join(f"{k}={_short(v)}" for k, v in self.vars.items())


def _short(v: Any, n: int = 30) -> str:
    s = str(v).replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def load_cases(source: Any, workspace: Workspace | None = None) -> list[Case]:
    """Read cases from a path, a dataset NAME@V, a DataFrame, a list of dicts or parsed YAML/JSON."""
    what, records = _records(source, workspace)
    if not records:
        raise InvalidInputError(f"no cases in {what}: it needs at least one row")
    return [_case(i + 1, where, rec) for i, (where, rec) in enumerate(records)]


def _records(source: Any, workspace: Workspace | None = None) -> tuple[str, list[tuple[str, Any]]]:
    if source is None:
        raise InvalidInputError("no cases: pass --on FILE (JSONL/CSV/YAML), a dataset NAME@V or a DataFrame / list variable")
    if isinstance(source, str | Path):
        from ..datasets.resolve import rows as dataset_rows

        hit = dataset_rows(source, workspace)
        if hit is not None:
            return hit[0], [(f"row {i} of {hit[0]}", r) for i, r in hit[1]]
        return _read_file(Path(source).expanduser())
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # pandas DataFrame
        recs = source.to_dict(orient="records")
        return "the DataFrame", [(f"row {i} of the DataFrame", r) for i, r in enumerate(recs)]
    if isinstance(source, dict):
        source = [source]
    if isinstance(source, list | tuple):
        return "the list", [(f"item {i} of the list", r) for i, r in enumerate(source)]
    raise InvalidInputError(
        f"cases must be a JSONL/CSV/YAML path, a DataFrame or a list of dicts, got {type(source).__name__}"
    )


def _read_file(path: Path) -> tuple[str, list[tuple[str, Any]]]:
    if not path.is_file():
        raise NotFoundError(f"cases file not found: {path}")
    name, suffix = path.name, path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        from ..jsonl import read_jsonl

        return name, [(f"line {i} of {name}", row) for i, row in read_jsonl(path)]
    text = path.read_text(encoding="utf-8")
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        return name, [(f"line {reader.line_num} of {name}", dict(r)) for r in reader]
    if suffix in (".json", ".yaml", ".yml"):
        import yaml

        from ..yamlsafe import one_line, safe_load

        try:
            data = json.loads(text) if suffix == ".json" else safe_load(text)
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"{name} is not valid JSON: {e}") from None
        except yaml.YAMLError as e:  # a key given twice too: plain YAML would drop an assertion
            raise InvalidInputError(f"{name} is not valid YAML: {one_line(e)}") from None
        if isinstance(data, dict) and isinstance(data.get("tests"), list):  # promptfoo config style
            data = data["tests"]
        if not isinstance(data, list):
            raise InvalidInputError(f"{name} must hold a list of cases (or a 'tests:' list)")
        return name, [(f"case {i + 1} of {name}", r) for i, r in enumerate(data)]
    raise InvalidInputError(f"unsupported cases file {name}: use .jsonl, .csv, .json or .yaml")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _case(number: int, where: str, rec: Any) -> Case:
    if not isinstance(rec, dict):
        raise InvalidInputError(f"case {number} ({where}) must be an object of variables, got {type(rec).__name__}")
    if STRUCTURED_KEYS & set(rec):
        extra = sorted(set(rec) - STRUCTURED_KEYS)
        if extra:
            raise InvalidInputError(
                f"case {number} ({where}) has unknown key(s) {', '.join(extra)}; "
                "a case has vars, assert and description"
            )
        variables = rec.get("vars") or {}
        asserts = rec.get("assert") or []
        if not isinstance(variables, dict):
            raise InvalidInputError(f"case {number} ({where}): 'vars' must be a mapping of name: value")
        if not isinstance(asserts, list):
            raise InvalidInputError(f"case {number} ({where}): 'assert' must be a list of assertions")
        return Case(number, where, {str(k): v for k, v in variables.items()}, list(asserts),
                    str(rec.get("description") or ""))
    # flat rows: blank CSV/DataFrame cells are missing values, so the missing variable is named
    return Case(number, where, {str(k): v for k, v in rec.items() if not _blank(v)})
