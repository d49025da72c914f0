"""Ratings (up/down + comment) on outputs, and their export as training data.

A rating points at a run (a single %%prompt run, a served request's prompt or rag run, or one
cell ``"case:column"`` of a compare grid or a test run). Served feedback may carry a 1-5 score
(4-5 count as up, 1-2 as down, 3 as neutral: kept, never exported) and a corrected answer
(migration 91). It is stored in table ``prompt_feedback`` (migration 51) together with the exact
messages and output it rates, and mirrored into the run's record (``record["feedback"]``) in
the same transaction, so the run shows its ratings and the export needs nothing else.

Export (``%prompt feedback export NAME --format sft|preference FILE``):
- ``sft``: every up-rated output as a chat row ``{"messages": [..., assistant]}``; a corrected
  answer is a row of its own, whatever the rating.
- ``preference``: for each exact input (same messages) with an up- and a down-rated output, a
  TRL conversational pair ``{"prompt": [...], "chosen": [assistant], "rejected": [assistant]}``;
  each row also carries ``messages`` (prompt + chosen), so %%finetune reads the file as chat SFT
  on the preferred answers while DPO trainers read prompt/chosen/rejected. A corrected answer is
  preferred over the output it corrects.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import html
from ..errors import InvalidInputError, NotFoundError
from ..workspace import Workspace, get_workspace, split_ref

UP, DOWN, NEUTRAL = 1, -1, 0
_WORDS = {"up": UP, "+1": UP, "1": UP, "good": UP, "👍": UP,
          "down": DOWN, "-1": DOWN, "bad": DOWN, "👎": DOWN}
FORMATS = ("sft", "preference")


def parse_rating(rating: str | int) -> int:
    if isinstance(rating, int) and not isinstance(rating, bool) and rating in (UP, DOWN):
        return rating
    r = _WORDS.get(str(rating).strip().lower())
    if r is None:
        raise InvalidInputError(f"rating must be up or down (or +1 / -1), got {rating!r}")
    return r


def _target(run: dict[str, Any], cell: str | None) -> dict[str, Any]:
    """prompt ref, model, messages and output of the rated thing."""
    rec = run["record"]
    if run["kind"] in ("prompt", "rag"):
        if cell:
            raise InvalidInputError(f"run {run['id']} is a single prompt run; rate it without a cell")
        return {"prompt": rec["prompt"], "model": rec["model"], "messages": rec["messages"],
                "output": rec["output"], "blocked": rec.get("blocked")}
    if run["kind"] not in ("prompt_compare", "prompt_test"):
        raise InvalidInputError(f"run {run['id']} is a {run['kind']} run; only prompt runs can be rated")
    cells = {f"{c['case']}:{c['column']}": c for c in rec["cells"]}
    if cell not in cells:
        raise NotFoundError(f"run {run['id']} has no cell {cell!r}; cells are CASE:COLUMN, 0-based "
                            f"(0:0 .. {max(cells, default='?')})")
    c = cells[cell]
    if c["output"] is None:
        raise InvalidInputError(f"cell {cell} of run {run['id']} has no output to rate (the model failed: {c['error']})")
    col = rec["columns"][c["column"]]
    return {"prompt": col["prompt"], "model": col["model"], "messages": c["messages"],
            "output": c["output"], "blocked": c.get("blocked")}


def score_rating(score: int) -> int:
    """A 1-5 score as up (4-5), down (1-2) or neutral (3)."""
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidInputError(f"a score must be a whole number from 1 to 5, got {score!r}")
    return UP if score >= 4 else DOWN if score <= 2 else NEUTRAL


def rate(run_id: str, rating: str | int | None, comment: str = "", cell: str | None = None,
         workspace: Workspace | None = None, correction: str = "",
         score: int | None = None) -> dict[str, Any]:
    """Store (or replace) the rating of a run's output, or of one grid cell ``"case:column"``.

    ``rating``: up/down (+1/-1), or None with a 1-5 ``score``; ``correction``: the answer it
    should have given (a training row of its own)."""
    ws = workspace or get_workspace()
    value = score_rating(score) if score is not None else parse_rating(rating)  # type: ignore[arg-type]
    run = ws.get_run(run_id)
    t = _target(run, cell)
    if t["blocked"]:
        raise InvalidInputError("that output was blocked by the guard policy; there is no model answer to rate")
    name, _ = split_ref(t["prompt"])
    row = {"run_id": run["id"], "cell": cell or "", "prompt": t["prompt"], "prompt_name": name,
           "model": t["model"], "rating": value, "comment": comment or "", "messages": t["messages"],
           "output": t["output"], "created_at": time.time(), "score": score,
           "correction": correction or ""}
    with ws.db(write=True) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO prompt_feedback (run_id, cell, prompt, prompt_name, model, rating,"
            " comment, messages, output, created_at, score, correction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row["run_id"], row["cell"], row["prompt"], name, row["model"], value, row["comment"],
             json.dumps(row["messages"]), row["output"], row["created_at"], score, row["correction"]),
        )
        rec_row = conn.execute("SELECT record FROM runs WHERE id=?", (run["id"],)).fetchone()
        rec = json.loads(rec_row[0])
        rec.setdefault("feedback", {})[cell or ""] = {"rating": value, "comment": row["comment"],
                                                      "at": row["created_at"], "score": score,
                                                      "correction": row["correction"]}
        conn.execute("UPDATE runs SET record=? WHERE id=?", (json.dumps(rec, default=str), run["id"]))
    return row


def list_feedback(name: str | None = None, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """Ratings (newest first), of one prompt name or all."""
    ws = workspace or get_workspace()
    q, args = "SELECT * FROM prompt_feedback", []
    if name:
        q, args = q + " WHERE prompt_name=?", [split_ref(name)[0]]
    with ws.db() as conn:
        rows = conn.execute(q + " ORDER BY created_at DESC", args).fetchall()
    return [{**dict(r), "messages": json.loads(r["messages"])} for r in rows]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def export_rows(name: str, fmt: str, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}; use {' or '.join(FORMATS)}")
    items = list_feedback(name, workspace)
    if not items:
        raise InvalidInputError(f"no ratings for prompt '{name}' yet; rate outputs with the 👍/👎 "
                                "buttons or %prompt feedback RUN[:CELL] up|down")
    items.reverse()  # oldest first: a stable file order
    return build_rows(items, fmt, f"prompt '{name}'")


def build_rows(items: list[dict[str, Any]], fmt: str, what: str) -> list[dict[str, Any]]:
    """Feedback items (oldest first) -> SFT or preference rows; ``what`` names them in errors."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}; use {' or '.join(FORMATS)}")
    usable = [i for i in items if i["output"].strip()]
    fixes = [i for i in items if (i.get("correction") or "").strip()]
    if fmt == "sft":
        seen: set[str] = set()
        rows = []
        for i in items:
            answer = (i.get("correction") or "").strip() or (i["output"] if i["rating"] == UP else "")
            if answer.strip():
                row = {"messages": i["messages"] + _assistant(answer)}
                key = json.dumps(row, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
        if not rows:
            raise InvalidInputError(f"{what} has no up-rated outputs (nor corrected answers) to export as SFT rows")
        return rows
    groups: dict[str, dict[int, list[str]]] = {}
    prompts: dict[str, list[dict[str, str]]] = {}
    for i in usable:
        if i["rating"] not in (UP, DOWN):
            continue
        key = json.dumps(i["messages"], sort_keys=True)
        prompts[key] = i["messages"]
        outs = groups.setdefault(key, {UP: [], DOWN: []})[i["rating"]]
        if i["output"] not in outs:
            outs.append(i["output"])
    rows = [{"prompt": prompts[k], "chosen": _assistant(c), "rejected": _assistant(r),
             "messages": prompts[k] + _assistant(c)}
            for k, g in groups.items() for c in g[UP] for r in g[DOWN] if c != r]
    rows += [{"prompt": i["messages"], "chosen": _assistant(i["correction"].strip()),
              "rejected": _assistant(i["output"]), "messages": i["messages"] + _assistant(i["correction"].strip())}
             for i in fixes if i["correction"].strip() != i["output"].strip() and i["output"].strip()]
    if not rows:
        raise InvalidInputError(
            f"no preference pairs for {what}: a pair needs one 👍 and one 👎 output for the "
            "same input (e.g. two models in a compare grid) or a corrected answer; use --format sft for up-rated rows"
        )
    return rows


@dataclass
class Export:
    path: Path
    format: str
    rows: int
    ratings: int

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        text = f"wrote {self.rows} {self.format} rows (from {self.ratings} ratings) to {self.path}"
        return {"text/plain": text, "text/html": html.box("feedback export", html.pre(text))}


def export(name: str, fmt: str, path: str | os.PathLike[str],
           workspace: Workspace | None = None) -> Export:
    """Write the ratings of prompt ``name`` as JSONL training rows (atomically)."""
    rows = export_rows(name, fmt, workspace)
    return Export(write_jsonl(rows, path), fmt, len(rows), len(list_feedback(name, workspace)))


def write_jsonl(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    dest = Path(path).expanduser()
    if dest.suffix.lower() not in (".jsonl", ".ndjson"):
        raise InvalidInputError(f"export to a .jsonl file (got {dest.name}); %%finetune reads JSONL")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, dest)
    return dest
