"""Dataset versions: immutable, content-addressed rows (a JSONL artifact) with a dataset card.

``save`` reads the rows, drops the bad ones (each listed with its line number and reason),
and records a new version only when the kept rows or their splits changed: the version's hash
is the hash of the rows file, so ``NAME@<hash prefix>`` names exactly those rows. The card
(format, schema, sources, splits, duplicates, label balance, PII scan, the run that made it)
is written next to the rows in the same atomic artifact.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, WorkspaceError
from ..workspace import Version, Workspace, check_name, get_workspace, split_ref
from . import formats, sources
from .resolve import KIND

ROWS_FILE, CARD_FILE = "rows.jsonl", "card.json"
MAX_BAD_LISTED = 50  # bad rows named in the card; the rest are counted


@dataclass(frozen=True)
class DatasetVersion:
    """One saved version (optionally one of its splits, ``NAME@V:test``)."""

    version: Version
    path: Path  # the artifact folder
    split: str | None = None

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def ref(self) -> str:
        return self.version.ref + (f":{self.split}" if self.split else "")

    @property
    def hash(self) -> str:
        """The version's content hash (of the rows' sha256, format and splits): NAME@<prefix>."""
        return self.version.hash

    @property
    def format(self) -> str:
        return self.version.content["format"]

    @property
    def splits(self) -> dict[str, int]:
        return dict(self.version.content["splits"])

    @cached_property
    def card(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / CARD_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise WorkspaceError(f"dataset {self.version.ref} has no readable card ({e}); save it again") from None

    def records(self) -> list[Any]:
        """The rows (of the split, when the ref named one), in saved order.

        The rows file is checked against the version's stored ``rows_hash`` (and row count) on
        every read: a damaged file is refused, never read with shifted splits."""
        try:
            blob = (self.path / ROWS_FILE).read_bytes()
        except OSError as e:
            raise WorkspaceError(f"dataset {self.version.ref} rows are unreadable ({e.strerror}); "
                                 "save it again") from None
        if hashlib.sha256(blob).hexdigest() != self.version.content.get("rows_hash"):
            raise self._corrupt(f"{ROWS_FILE} does not match its stored hash")
        raws = sources.read_jsonl_text(blob.decode("utf-8", errors="replace"), ROWS_FILE)
        bad = next((r for r in raws if r.error is not None), None)
        if bad is not None:
            raise self._corrupt(f"{bad.where}: {bad.error}")
        if len(raws) != self.version.content.get("rows"):
            raise self._corrupt(f"{ROWS_FILE} holds {len(raws)} rows, the version {self.version.content.get('rows')}")
        recs = [r.record for r in raws]
        if self.split is None:
            return recs
        start = 0
        for split, n in self.splits.items():
            if split == self.split:
                return recs[start:start + n]
            start += n
        raise InvalidInputError(f"dataset {self.version.ref} has no split '{self.split}'; "
                                f"splits: {', '.join(self.splits)}")

    def _corrupt(self, why: str) -> WorkspaceError:
        return WorkspaceError(f"dataset {self.version.ref} is corrupt ({why}); save it again with "
                              f"%%dataset {self.name} (or cellops.datasets.save('{self.name}', rows))")

    def to_frame(self) -> Any:
        import pandas as pd

        recs = self.records()
        return pd.DataFrame([r if isinstance(r, dict) else {"text": r} for r in recs])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .card import card_bundle

        return card_bundle(self.ref, self.card)


def _rows_blob(recs: list[Any]) -> bytes:
    # ensure_ascii keeps U+2028/U+2029 escaped, so any JSON Lines reader splits the file correctly
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs).encode()


def _split_rows(srcs: list[sources.Source], fmt: str | None) -> tuple[str, dict[str, list[Any]], list[dict[str, Any]]]:
    """(format, {split: kept rows}, bad rows) after checking every row against the format."""
    readable = [r.record for s in srcs for r in s.raws if r.error is None]
    if fmt is None:
        fmt = formats.detect(readable)
    elif fmt not in formats.FORMATS:
        raise InvalidInputError(f"unknown dataset format '{fmt}'; use one of {', '.join(formats.FORMATS)}")
    kept: dict[str, list[Any]] = {}
    bad: list[dict[str, Any]] = []
    for s in srcs:
        for raw in s.raws:
            why = raw.error or formats.problem(raw.record, fmt)
            if why is None:
                kept.setdefault(s.split, []).append(raw.record)
            else:
                bad.append({"source": s.label, "line": raw.line, "where": raw.where, "reason": why})
    return fmt, kept, bad


def save(name: str, data: Any, *, format: str | None = None, description: str = "",
         workspace: Workspace | None = None, source: str = "python",
         extra: dict[str, Any] | None = None) -> tuple[DatasetVersion, bool]:
    """Save ``data`` (rows, a path, a DataFrame, a dataset ref, or {split: any}) as dataset ``name``.

    Returns ``(version, created)``; ``created`` is False when the kept rows equal the latest
    version's. Bad rows are left out and listed on the card; no good row is lost.
    ``extra`` goes onto the card (synthesize records its generator and filters there).
    """
    ws = workspace or get_workspace()
    check_name(name)
    srcs = sources.read_all(data, ws)
    if not any(s.raws for s in srcs):
        raise InvalidInputError(f"dataset '{name}' would be empty: {', '.join(s.label for s in srcs)} "
                                "holds no rows")
    fmt, kept, bad = _split_rows(srcs, format)
    if not kept:
        first = "; ".join(f"{b['where']}: {b['reason']}" for b in bad[:3])
        raise InvalidInputError(f"every row of dataset '{name}' is invalid as {fmt} ({first}); fix the rows "
                                "or pass format=")
    recs = [r for split in kept.values() for r in split]
    blob = _rows_blob(recs)
    content = {"rows_hash": hashlib.sha256(blob).hexdigest(), "format": fmt, "rows": len(recs),
               "splits": {k: len(v) for k, v in kept.items()}}
    latest = ws.list_versions(KIND, name)
    if latest and latest[-1].content == content:
        v = latest[-1]
        return DatasetVersion(v, ws.artifact_dir(KIND, name, v.version)), False
    return _write(ws, name, content, blob, recs, srcs, bad, description, source, extra or {})


def _write(ws: Workspace, name: str, content: dict[str, Any], blob: bytes, recs: list[Any],
           srcs: list[sources.Source], bad: list[dict[str, Any]], description: str, source: str,
           extra: dict[str, Any]) -> tuple[DatasetVersion, bool]:
    import uuid

    from .card import build_card

    run_id = uuid.uuid4().hex[:12]
    card = build_card(name, content, recs, srcs, bad, ws) | {
        "description": description, "run": run_id, "made_by": source,
        "created_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()), **extra}
    staging = ws.staging_dir()
    (staging / ROWS_FILE).write_bytes(blob)  # rows and card land together, atomically
    (staging / CARD_FILE).write_text(json.dumps(card, indent=1, default=str), encoding="utf-8")
    v, created = ws.save_version(KIND, name, content, artifact=staging)
    path = ws.artifact_dir(KIND, name, v.version)
    if created:
        ws.record_run(KIND, {"dataset": v.ref, "dataset_hash": v.hash, "rows_sha256": content["rows_hash"],
                             "sources": [s.to_dict() for s in srcs], "rows": content["rows"],
                             "bad_rows": len(bad), "made_by": source, **_run_extra(extra)},
                      name, v.version, run_id=run_id)
    return DatasetVersion(v, path), created


def _run_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """Scalars of the card's extra section that the run record should also carry (model, seed)."""
    keep = {}
    for k, val in extra.get("synthetic", {}).items():
        if isinstance(val, str | int | float) and k in ("model", "model_hash", "prompt", "seed_dataset", "seed"):
            keep[f"synth_{k}"] = val
    return keep


def get(ref: str, workspace: Workspace | None = None) -> DatasetVersion:
    """``NAME``, ``NAME@V``, ``NAME@alias``, ``NAME@<hash prefix>``, optionally ``:SPLIT``."""
    ws = workspace or get_workspace()
    base, _, split = ref.strip().partition(":")
    v = ws.resolve(KIND, base)
    ds = DatasetVersion(v, ws.artifact_dir(KIND, v.name, v.version), split or None)
    if split and split not in ds.splits:
        raise InvalidInputError(f"dataset {v.ref} has no split '{split}'; splits: {', '.join(ds.splits)}")
    return ds


def list_datasets(workspace: Workspace | None = None) -> list[DatasetVersion]:
    """The latest version of every dataset."""
    ws = workspace or get_workspace()
    return [get(n, ws) for n in ws.names(KIND)]


def history(name: str, workspace: Workspace | None = None) -> list[DatasetVersion]:
    ws = workspace or get_workspace()
    base = split_ref(name)[0]  # history of qa@2 is the history of qa
    check_name(base)
    return [DatasetVersion(v, ws.artifact_dir(KIND, v.name, v.version)) for v in ws.list_versions(KIND, base)]


def alias(ref: str, alias_name: str, workspace: Workspace | None = None) -> DatasetVersion:
    ws = workspace or get_workspace()
    v = ws.set_alias(KIND, ref, alias_name)
    return DatasetVersion(v, ws.artifact_dir(KIND, v.name, v.version))
