"""``cellops.pipelines.record(name=value)``: values a notebook hands to its run record.

Inside a run started by cellops, the kernel's environment names a file (CELLOPS_PIPELINE_VALUES)
that each call appends one JSON line to; the runner reads it into the record's ``values`` (and
numeric ones into ``metrics``), and a chain feeds them to later steps' parameters. Under plain
papermill (e.g. the Airflow export) pass ``-p cellops_values_file PATH`` instead.
Outside any pipeline the call just returns the values, so notebooks run unchanged by hand.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from .. import html
from ..errors import InvalidInputError
from ..jsonl import BadLines, read_jsonl

ENV_VALUES = "CELLOPS_PIPELINE_VALUES"
PARAM_VALUES = "cellops_values_file"


class Recorded(dict):
    """The values just recorded (a dict), shown as a small table."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        rows = [(k, json.dumps(v)[:200]) for k, v in self.items()]
        return {"text/plain": "recorded: " + ", ".join(f"{k}={v}" for k, v in rows),
                "text/html": html.box("recorded", html.table(("name", "value"), rows))}


def _jsonable(name: str, value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"cannot record {name}={value!r}: give a number, string, bool, list or dict"
        ) from None
    return value


def values_file() -> Path | None:
    env = os.environ.get(ENV_VALUES)
    if env:
        return Path(env)
    main = sys.modules.get("__main__")  # papermill injects parameters as the kernel's globals
    path = getattr(main, PARAM_VALUES, None)
    return Path(path) if isinstance(path, str) and path else None


def record(**values: Any) -> Recorded:
    """Record named values (metrics, refs such as a model version) for the current run."""
    for name in values:
        if not name.isidentifier():
            raise InvalidInputError(f"record(): '{name}' must be a Python identifier")
    clean = Recorded({k: _jsonable(k, v) for k, v in values.items()})
    path = values_file()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps(clean) + "\n")
    return clean


def read_values(path: Path) -> dict[str, Any]:
    """All recorded values in order; later calls win."""
    out: dict[str, Any] = {}
    if path.is_file():
        # a line cut short by a dying kernel is skipped (BadLines), the rest kept
        for _, row in read_jsonl(path, BadLines(str(path))):
            if isinstance(row, dict):
                out.update(row)
    return out


def metrics_of(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
