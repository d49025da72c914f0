"""Training data: JSONL / CSV / DataFrame rows -> validated chat conversations.

Three row formats (axolotl / TRL names): chat ``messages`` (a list of {role, content}), alpaca
(``instruction``, optional ``input``, ``output``, optional ``system``) and ``prompt`` /
``completion``. Every row becomes a list of messages; the base model's chat template formats it
later (tokenize.py). Preference rows (``--method dpo|kto|orpo``) have a prompt (``prompt`` text or
messages, or ``messages`` ending with the user's turn), ``chosen`` and ``rejected`` (text, or TRL's
one-assistant-message lists): ``messages`` is then prompt + chosen, ``rejected`` the other answer. Invalid rows are collected with their line numbers and reasons and reported
together, before anything starts: nothing is silently dropped.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GuardBlocked, InvalidInputError, NotFoundError
from ..workspace import Workspace, content_hash

Message = dict[str, str]
ROLES = {"system", "user", "assistant"}
MAX_REPORTED = 8  # problems listed in one error line; the rest are counted


@dataclass
class Row:
    line: int  # 1-based line in the file (JSONL line, CSV record + header, DataFrame index + 1)
    messages: list[Message]
    rejected: str | None = None  # preference rows: the dispreferred last answer

    @property
    def prompt(self) -> list[Message]:
        return self.messages[:-1]


@dataclass
class Dataset:
    rows: list[Row]
    format: str
    source: str
    notes: list[str] = field(default_factory=list)  # redactions, PII findings: shown in the plan

    @property
    def hash(self) -> str:
        """Content hash of the normalized conversations (what the model actually sees)."""
        return content_hash([r.messages if r.rejected is None else [r.messages, r.rejected]
                             for r in self.rows])

    def split(self, fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
        """(train, eval): a seeded, reproducible hold-out of ``fraction`` of the rows (>= 1)."""
        if fraction <= 0:
            return list(self.rows), []
        if len(self.rows) < 2:
            raise InvalidInputError(
                f"eval_split {fraction} needs at least 2 rows, the data has {len(self.rows)}; "
                "add rows or pass --eval-split 0"
            )
        import random

        order = list(range(len(self.rows)))
        random.Random(seed).shuffle(order)
        n_eval = min(len(order) - 1, max(1, math.floor(len(order) * fraction)))
        held = set(order[:n_eval])
        return ([r for i, r in enumerate(self.rows) if i not in held],
                [r for i, r in enumerate(self.rows) if i in held])


def load(data: Any, fmt: str = "auto", workspace: Workspace | None = None,
         preference: bool = False) -> Dataset:
    """Read and validate ``data`` (path, NAME@V dataset, DataFrame, or list of dicts); raise on any
    bad row. ``preference``: every row must be a preference pair (the method is dpo/kto/orpo)."""
    source, records = _records(data, workspace)
    if not records:
        raise InvalidInputError(f"the dataset {source} is empty; it needs at least one row")
    if preference:
        fmt = "preference"
    elif fmt == "auto":
        fmt = detect(records[0][1], source)
        if fmt == "preference":
            raise InvalidInputError(f"{source} holds preference rows (chosen/rejected): train them "
                                    "with --method dpo (or kto, orpo), or give SFT rows")
    rows: list[Row] = []
    problems: list[str] = []
    for line, rec in records:
        try:
            rows.append(to_preference(line, rec) if fmt == "preference" else Row(line, to_messages(rec, fmt)))
        except ValueError as e:
            problems.append(f"line {line}: {e}")
    if problems:
        more = f" (+{len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        raise InvalidInputError(
            f"{len(problems)} invalid row(s) in {source} ({fmt} format): "
            + "; ".join(problems[:MAX_REPORTED]) + more + ". Fix them and run again"
        )
    return Dataset(rows, fmt, source)


def _records(data: Any, workspace: Workspace | None = None) -> tuple[str, list[tuple[int, Any]]]:
    if data is None:
        raise InvalidInputError("no training data: pass --data PATH (JSONL or CSV), a dataset NAME@V or a DataFrame variable")
    if isinstance(data, str | Path):
        from ..datasets.resolve import rows as dataset_rows

        return dataset_rows(data, workspace) or _read_file(Path(data).expanduser())
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        recs = data.to_dict(orient="records")
        return f"DataFrame ({len(recs)} rows)", [(i + 1, r) for i, r in enumerate(recs)]
    if isinstance(data, list | tuple):
        return f"list ({len(data)} rows)", [(i + 1, r) for i, r in enumerate(data)]
    raise InvalidInputError(
        f"data must be a JSONL/CSV path, a DataFrame or a list of dicts, got {type(data).__name__}"
    )


def _read_file(path: Path) -> tuple[str, list[tuple[int, Any]]]:
    if not path.is_file():
        raise NotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        from ..jsonl import read_rows

        out, bad = read_rows(path)
        if bad:  # training data is all or nothing (see load): every bad line is named
            raise InvalidInputError(f"{len(bad.lines)} unreadable line(s) in {path}: " + "; ".join(
                f"line {n}: {why}" for n, why in bad.lines[:MAX_REPORTED]))
        return str(path), out
    if suffix in (".csv", ".tsv"):
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            # line numbers as an editor shows them: the header is line 1
            return str(path), [(reader.line_num, dict(r)) for r in reader]
    raise InvalidInputError(f"unsupported data file {path.name}: use .jsonl or .csv")


def detect(rec: Any, source: str) -> str:
    """The format from the first row's keys."""
    keys = set(rec) if isinstance(rec, dict) else set()
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if "messages" in keys:
        return "chat"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if {"prompt", "completion"} <= keys:
        return "completion"
    raise InvalidInputError(
        f"cannot tell the format of {source} from its first row (keys: {', '.join(sorted(keys)) or 'none'}); "
        "rows need 'messages', or 'instruction'+'output', or 'prompt'+'completion'"
    )


def _text(rec: dict[str, Any], key: str, required: bool = True) -> str:
    v = rec.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):  # CSV/DataFrame blanks
        v = ""
    if not isinstance(v, str):
        raise ValueError(f"'{key}' must be text, got {type(v).__name__}")
    if required and not v.strip():
        raise ValueError(f"'{key}' is missing or empty")
    return v


def to_messages(rec: Any, fmt: str) -> list[Message]:
    """One row -> messages; ValueError says what is wrong with the row."""
    if not isinstance(rec, dict):
        raise ValueError(f"a row must be an object, got {type(rec).__name__}")
    if fmt == "chat":
        msgs = rec.get("messages")
        if isinstance(msgs, str):  # CSV cells hold JSON
            try:
                msgs = json.loads(msgs)
            except json.JSONDecodeError:
                raise ValueError("'messages' is not a JSON list") from None
        return _check_chat(msgs)
    if fmt == "alpaca":
        user = _text(rec, "instruction")
        extra = _text(rec, "input", required=False)
        msgs = [{"role": "user", "content": user + (f"\n\n{extra}" if extra.strip() else "")},
                {"role": "assistant", "content": _text(rec, "output")}]
        system = _text(rec, "system", required=False)
        return ([{"role": "system", "content": system}] if system.strip() else []) + msgs
    return [{"role": "user", "content": _text(rec, "prompt")},
            {"role": "assistant", "content": _text(rec, "completion")}]


def _json_cell(rec: dict[str, Any], key: str) -> Any:
    v = rec.get(key)
    if isinstance(v, str) and v.lstrip().startswith("[{"):  # CSV cells hold JSON lists of messages
        try:
            parsed = json.loads(v)
        except json.JSONDecodeError:
            return v  # text that happens to start like JSON
        return parsed if isinstance(parsed, list) else v
    return v


def _answer(rec: dict[str, Any], key: str) -> str:
    """``chosen`` / ``rejected``: text, or a list holding one assistant message (TRL's form)."""
    v = _json_cell(rec, key)
    if isinstance(v, list):
        if len(v) != 1 or not isinstance(v[0], dict) or v[0].get("role") != "assistant":
            raise ValueError(f"'{key}' must be text or a list of one assistant message")
        v = v[0].get("content")
    return _text({key: v}, key)


def to_preference(line: int, rec: Any) -> Row:
    """One preference row -> Row(messages = prompt + chosen, rejected); ValueError says what is wrong."""
    if not isinstance(rec, dict):
        raise ValueError(f"a row must be an object, got {type(rec).__name__}")
    prompt = _json_cell(rec, "prompt") if "prompt" in rec else _json_cell(rec, "messages")
    if isinstance(prompt, str):
        system = _text(rec, "system", required=False)
        prompt = ([{"role": "system", "content": system}] if system.strip() else []) + [
            {"role": "user", "content": _text(rec, "prompt")}]
    if not isinstance(prompt, list) or not prompt:
        raise ValueError("needs a 'prompt' (text or messages) or 'messages' ending with the user's turn")
    chosen, rejected = _answer(rec, "chosen"), _answer(rec, "rejected")
    msgs = _check_chat(prompt + [{"role": "assistant", "content": chosen}])
    if len(msgs) < 2 or msgs[-2]["role"] != "user":
        raise ValueError("the prompt must end with the user's turn (chosen/rejected answer it)")
    if chosen.strip() == rejected.strip():
        raise ValueError("'chosen' and 'rejected' are the same answer: nothing to prefer")
    return Row(line, msgs, rejected)


def _check_chat(msgs: Any) -> list[Message]:
    if not isinstance(msgs, list) or not msgs:
        raise ValueError("'messages' must be a non-empty list of {role, content}")
    out: list[Message] = []
    for j, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ValueError(f"message {j} needs role system|user|assistant")
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            raise ValueError(f"message {j} ({m['role']}) has no text content")
        if m["role"] == "system" and j != 0:
            raise ValueError(f"message {j}: a system message may only come first")
        out.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "assistant" for m in out):
        raise ValueError("no assistant message: there is nothing to learn from this row")
    if out[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's (trailing turns would be ignored)")
    return out


def scan_pii(ds: Dataset, policy: Any) -> Dataset:
    """Run the guard policy's input check on every message before training.

    Blocked rows stop the run (GuardBlocked listing them); redacted rows train on the redacted
    text; findings that are only reported are listed in ``notes``. The policy decides which.
    """
    blocked: list[str] = []
    changed: list[int] = []
    flagged: list[int] = []
    for row in ds.rows:
        texts = [*row.messages, *([{"role": "rejected", "content": row.rejected}] if row.rejected else [])]
        for m in texts:
            rep = policy.check_input(m["content"])
            if not rep.allowed:
                blocked.append(f"line {row.line} ({m['role']}): {rep.reason or 'blocked'}")
                break
            if rep.text is not None and rep.text != m["content"]:
                m["content"] = rep.text
                changed.append(row.line)
            elif getattr(rep, "triggered", None):  # warn/log actions: train on it, but say so
                flagged.append(row.line)
        if row.rejected is not None:
            row.rejected = texts[-1]["content"]
    ref = getattr(policy, "ref", "guard policy")
    if blocked:
        more = f" (+{len(blocked) - MAX_REPORTED} more)" if len(blocked) > MAX_REPORTED else ""
        raise GuardBlocked(
            f"guard policy {ref} blocked {len(blocked)} training row(s): "
            + "; ".join(blocked[:MAX_REPORTED]) + more
            + ". Remove the personal data, or switch the policy off with %guard off"
        )
    if changed:
        ds.notes.append(f"guard {ref} redacted PII in lines {format_lines(changed)}")
    if flagged:
        ds.notes.append(f"guard {ref} flagged (allowed by its actions) lines {format_lines(flagged)}")
    return ds


def format_lines(lines: list[int]) -> str:
    u = sorted(set(lines))
    return ", ".join(map(str, u[:20])) + (f" (+{len(u) - 20} more)" if len(u) > 20 else "")
