"""Reading dataset rows from what a user has: a path, a DataFrame, a list, or {split: any of these}.

Every row keeps where it came from (``line 4 of train.jsonl``) so a bad row is named with its
line number; an unreadable line is a bad row, not an error that loses the rest. JSON Lines are
split on "\\n" only (``str.splitlines`` would also break at U+2028 inside a JSON string).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, NotFoundError
from ..jsonl import parse_line

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt", ".parquet")


@dataclass
class Raw:
    """One row as read: its record, or the reason it could not be read."""

    where: str  # "line 4 of train.jsonl"
    line: int
    record: Any = None
    error: str | None = None


@dataclass(frozen=True)
class JsonLines:
    """JSON Lines text given inline (a %%dataset cell body); lines are numbered within it."""

    text: str
    label: str = "the cell"


@dataclass
class Source:
    label: str  # the path as given, "DataFrame", "list", or "dataset NAME@V"
    split: str
    sha256: str
    raws: list[Raw] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.label, "split": self.split, "sha256": self.sha256,
                "rows": len(self.raws)}


def read_jsonl_text(text: str, name: str) -> list[Raw]:
    """JSON Lines -> rows; blank lines are skipped, invalid lines become bad rows."""
    out: list[Raw] = []
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            out.append(Raw(f"line {i} of {name}", i, parse_line(line.encode("utf-8"))))
        except ValueError as e:  # the one JSON Lines rule (kernels_lib/jsonl.py)
            out.append(Raw(f"line {i} of {name}", i, error=str(e)))
    return out


def _clean(rec: Any) -> Any:
    """DataFrame/CSV blanks (NaN) are missing values, so a validator names them as missing."""
    if isinstance(rec, dict):
        return {str(k): v for k, v in rec.items() if not (isinstance(v, float) and math.isnan(v))}
    return rec


def _read_file(path: Path, label: str) -> tuple[str, list[Raw]]:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError(f"unsupported data file {path.name}: use {', '.join(SUFFIXES)}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"file not found: {label}") from None
    except OSError as e:
        raise InvalidInputError(f"cannot read {label} ({e.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    name = path.name
    try:
        text = data.decode("utf-8") if suffix != ".parquet" else ""
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{label} is not UTF-8 text (byte {e.start}); convert it first") from None
    if suffix in (".jsonl", ".ndjson"):
        return digest, read_jsonl_text(text, name)
    if suffix == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"{label} is not valid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(items, list):
            raise InvalidInputError(f"{label} must hold a JSON list of rows (or use .jsonl)")
        return digest, [Raw(f"item {i} of {name}", i, r) for i, r in enumerate(items, start=1)]
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        return digest, [Raw(f"line {reader.line_num} of {name}", reader.line_num, dict(r)) for r in reader]
    if suffix == ".txt":  # one text row per non-empty line
        return digest, [Raw(f"line {i} of {name}", i, {"text": s}) for i, s in
                        enumerate(text.split("\n"), start=1) if s.strip()]
    import pandas as pd

    df = pd.read_parquet(path)
    return digest, [Raw(f"row {i} of {name}", i, _clean(r)) for i, r in
                    enumerate(df.to_dict(orient="records"), start=1)]


def read(source: Any, split: str = "train", workspace: Any = None) -> Source:
    """One source -> its rows. A string that is no file may name a saved dataset (NAME@V)."""
    if isinstance(source, str | Path):
        from .resolve import resolve

        found = resolve(source, workspace)
        if not isinstance(found, Path):  # a saved dataset: derive a new one from its rows
            raws = [Raw(f"row {i} of {found.ref}", i, r) for i, r in enumerate(found.records(), 1)]
            return Source(f"dataset {found.ref}", split, found.hash, raws)
        if found.is_dir():
            raise InvalidInputError(f"{source} is a folder; pass a data file ({', '.join(SUFFIXES)})")
        digest, raws = _read_file(found, str(source))
        return Source(str(source), split, digest, raws)
    if isinstance(source, JsonLines):
        return Source(source.label, split, hashlib.sha256(source.text.encode()).hexdigest(),
                      read_jsonl_text(source.text, source.label))
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        recs = [_clean(r) for r in source.to_dict(orient="records")]
        return Source("DataFrame", split, _digest(recs),
                      [Raw(f"row {i} of the DataFrame", i, r) for i, r in enumerate(recs)])
    if isinstance(source, list | tuple):
        recs = list(source)
        return Source("list", split, _digest(recs),
                      [Raw(f"item {i} of the list", i, r) for i, r in enumerate(recs)])
    raise InvalidInputError(
        f"dataset rows must be a path ({', '.join(SUFFIXES)}), a DataFrame, a list of rows or "
        f"{{split: rows}}, got {type(source).__name__}")


def _digest(recs: list[Any]) -> str:
    return hashlib.sha256(json.dumps(recs, sort_keys=True, default=str).encode()).hexdigest()


def read_all(data: Any, workspace: Any = None) -> list[Source]:
    """``data`` or ``{split: data}`` -> sources, one per split."""
    if data is None:
        raise InvalidInputError("no rows: pass a path, a DataFrame, a list of rows or {split: rows}")
    if isinstance(data, dict):  # {split: source}; a single row is a list of one
        if not data:
            raise InvalidInputError("no splits: pass {split: rows} with at least one split")
        return [read(v, check_split(str(k)), workspace) for k, v in data.items()]
    return [read(data, "train", workspace)]


def check_split(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise InvalidInputError(f"invalid split name {name!r}: use letters, digits, '_' or '-'")
    return name
