"""Row formats of a dataset: detect the format, check every row against it, infer the schema.

Formats (TRL / axolotl / promptfoo names): ``chat`` (``messages``), ``completion``
(``prompt``/``completion``), ``alpaca`` (``instruction``/``output``), ``preference``
(``prompt``/``chosen``/``rejected`` with text or message lists, or ``messages`` + ``chosen`` +
``rejected``: the chat form), ``kto`` (``prompt``/``completion``/boolean ``label``), ``eval``
(``vars``/``assert`` cases), ``text`` (a ``text`` field or plain strings) and ``records`` (any
other objects, e.g. documents for %%rag build). The format is the most common one among the rows;
a row that does not fit it is a bad row with a reason, and the other rows are kept.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

FORMATS = ("chat", "completion", "alpaca", "preference", "kto", "eval", "text", "records")
LABEL_FIELDS = ("label", "labels", "decision", "category", "class", "intent", "sentiment")


def detect_row(rec: Any) -> str:
    """The format one row looks like (keys only; validation comes later)."""
    if isinstance(rec, str):
        return "text"
    if not isinstance(rec, dict):
        return "invalid"
    keys = set(rec)
    if {"chosen", "rejected"} & keys and ({"prompt", "messages"} & keys or {"chosen", "rejected"} <= keys):
        return "preference"
    if "messages" in keys:
        return "chat"
    if keys & {"vars", "assert"}:
        return "eval"
    if {"prompt", "completion", "label"} <= keys and isinstance(rec.get("label"), bool):
        return "kto"
    if {"prompt", "completion"} <= keys:
        return "completion"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if "text" in keys and len(keys) <= 3 and isinstance(rec.get("text"), str):
        return "text"
    return "records"


def detect(records: list[Any]) -> str:
    """The dataset's format: the most common row format (ties: the earlier in FORMATS)."""
    counts = Counter(detect_row(r) for r in records)
    counts.pop("invalid", None)
    if not counts:
        return "records"
    return max(counts, key=lambda f: (counts[f], -FORMATS.index(f)))


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _text(rec: dict[str, Any], key: str) -> str | None:
    """A problem with a required text field, or None."""
    if key not in rec or _blank(rec[key]):
        return f"'{key}' is missing or empty"
    if not isinstance(rec[key], str):
        return f"'{key}' must be text, got {type(rec[key]).__name__}"
    return None


def _messages(v: Any, key: str, need_assistant: bool) -> str | None:
    if not isinstance(v, list) or not v:
        return f"'{key}' must be a non-empty list of {{role, content}}"
    for j, m in enumerate(v):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            return f"{key}[{j}] needs role system|user|assistant"
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            return f"{key}[{j}] ({m['role']}) has no text content"
    if need_assistant and v[-1]["role"] != "assistant":
        return f"the last message of '{key}' must be the assistant's"
    return None


def _answer(rec: dict[str, Any], key: str) -> str | None:
    v = rec.get(key)
    if isinstance(v, list):
        return _messages(v, key, need_assistant=True)
    return _text(rec, key)


def _preference(rec: dict[str, Any]) -> str | None:
    if "messages" in rec:
        problem = _messages(rec["messages"], "messages", need_assistant=False)
    elif isinstance(rec.get("prompt"), list):
        problem = _messages(rec["prompt"], "prompt", need_assistant=False)
    elif "prompt" in rec:
        problem = _text(rec, "prompt")
    elif isinstance(rec.get("chosen"), list):  # TRL implicit-prompt conversational form
        problem = None
    else:
        problem = "'prompt' (or 'messages') is missing"
    problem = problem or _answer(rec, "chosen") or _answer(rec, "rejected")
    if problem is None and rec["chosen"] == rec["rejected"]:
        problem = "'chosen' and 'rejected' are identical: the pair teaches nothing"
    return problem


def _eval(rec: dict[str, Any]) -> str | None:
    extra = sorted(set(rec) - {"vars", "assert", "description"})
    if extra:
        return f"unknown key(s) {', '.join(extra)}; an eval case has vars, assert and description"
    if not isinstance(rec.get("vars", {}), dict):
        return "'vars' must be a mapping of name: value"
    if not isinstance(rec.get("assert", []), list):
        return "'assert' must be a list of assertions"
    from ..errors import InvalidInputError
    from ..prompts.assertions import validate

    for j, a in enumerate(rec.get("assert") or [], start=1):
        try:
            validate(a, f"assertion {j}")
        except InvalidInputError as e:
            return str(e)
    return None


def problem(rec: Any, fmt: str) -> str | None:
    """Why ``rec`` is not a valid row of format ``fmt`` (None: it is)."""
    if fmt == "text":
        if isinstance(rec, str):
            return None if rec.strip() else "empty text"
        return _text(rec, "text") if isinstance(rec, dict) else f"a row must be text or an object, got {type(rec).__name__}"
    if not isinstance(rec, dict):
        return f"a row must be a JSON object, got {type(rec).__name__}"
    if fmt == "chat":
        return _messages(rec.get("messages"), "messages", need_assistant=False)
    if fmt == "completion":
        return _text(rec, "prompt") or _text(rec, "completion")
    if fmt == "alpaca":
        return _text(rec, "instruction") or _text(rec, "output")
    if fmt == "preference":
        return _preference(rec)
    if fmt == "kto":
        p = _text(rec, "prompt") or _text(rec, "completion")
        return p or (None if isinstance(rec.get("label"), bool) else "'label' must be true or false")
    if fmt == "eval":
        return _eval(rec)
    return None if rec else "empty object"


def schema(records: list[Any]) -> dict[str, str]:
    """Field -> 'type (share of rows)', e.g. {'prompt': 'str (100%)', 'label': 'bool (50%)'}."""
    if records and all(isinstance(r, str) for r in records):
        return {"(row)": "str (100%)"}
    types: dict[str, Counter[str]] = {}
    for r in records:
        for k, v in (r.items() if isinstance(r, dict) else []):
            types.setdefault(k, Counter())[type(v).__name__ if v is not None else "null"] += 1
    n = max(len(records), 1)
    return {k: f"{'|'.join(t for t, _ in c.most_common())} ({100 * sum(c.values()) // n}%)"
            for k, c in types.items()}


def label_balance(records: list[Any]) -> dict[str, dict[str, int]]:
    """Counts per value of label-like fields (a known name, or few distinct scalar values)."""
    dicts = [r for r in records if isinstance(r, dict)]
    out: dict[str, dict[str, int]] = {}
    for key in LABEL_FIELDS:
        values = [r[key] for r in dicts if isinstance(r.get(key), str | bool | int)]
        if values and len(set(values)) <= 50:
            out[key] = dict(Counter(str(v) for v in values).most_common())
    return out
