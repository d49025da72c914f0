"""JSON Lines, read the one way the format allows: records separated by ``\\n`` only.

``str.splitlines()`` (and text-mode iteration, which splits on a bare ``\\r``) also breaks lines
at U+2028, U+2029, U+0085, U+000B, U+000C and U+001C-U+001E. All of these may appear inside a
JSON string (web text such as MS MARCO passages holds them), so splitting there cuts a record in
two. Here a file is split on ``b"\\n"`` only, a trailing ``\\r`` (CRLF files) is dropped, and raw
control characters inside strings are accepted (``strict=False``), as most JSON writers that do
not escape them expect.

A row that really is broken does not sink the file: it is reported with its line number and the
reason, and every other row is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidInputError, NotFoundError

MAX_REPORTED = 5  # bad lines named in a message; the count covers the rest


@dataclass
class BadLines:
    """Lines of one file that were skipped, as (line number, reason)."""

    path: str
    lines: list[tuple[int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def summary(self) -> str:
        """One line: how many rows were skipped and why (the first few by number)."""
        shown = "; ".join(f"line {n}: {why}" for n, why in self.lines[:MAX_REPORTED])
        more = f" (and {len(self.lines) - MAX_REPORTED} more)" if len(self.lines) > MAX_REPORTED else ""
        return f"{Path(self.path).name}: skipped {len(self.lines)} bad row(s): {shown}{more}"


def parse_line(raw: bytes) -> Any:
    """One JSON Lines record (bytes without its ``\\n``) -> the value; ValueError says why not."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 (byte {e.start})") from None
    if text.startswith("\ufeff"):  # a BOM on the first line
        text = text[1:]
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at column {e.colno})") from None


def read_jsonl(path: str | Path, bad: BadLines | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank record of a JSON Lines file.

    A record that cannot be parsed is appended to ``bad`` (line number and reason) and skipped;
    without ``bad`` it raises InvalidInputError naming the line, for callers that must not go on
    with part of a file.
    """
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"file not found: {p}") from None
    except OSError as e:
        raise InvalidInputError(f"cannot read {p}: {e.strerror}") from None
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = parse_line(raw)
        except ValueError as e:
            if bad is None:
                raise InvalidInputError(f"{p.name} line {n} is {e}; one JSON value per line") from None
            bad.lines.append((n, str(e)))
            continue
        yield n, value


def read_rows(path: str | Path) -> tuple[list[tuple[int, Any]], BadLines]:
    """All readable records of ``path`` plus what was skipped (see :func:`read_jsonl`)."""
    bad = BadLines(str(path))
    return list(read_jsonl(path, bad)), bad
