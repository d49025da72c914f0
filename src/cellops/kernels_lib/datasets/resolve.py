"""The one place a data argument becomes rows: an existing path stays a path, ``NAME[@V][:SPLIT]``
names a saved dataset version, anything else (a DataFrame, a list) passes through.

``%%finetune --data``, ``%prompt test|compare``, ``%%rag build``, ``rag.evaluate`` queries,
``guard.evaluate`` rows and pipeline parameters all go through :func:`resolve`, so ``qa@2`` works
wherever a file name works. A path wins over a dataset of the same name (a file on disk is what the user sees next to the notebook).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..workspace import NAME_RE, Workspace, get_workspace

if TYPE_CHECKING:
    from .store import DatasetVersion

KIND = "dataset"
FILE_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt", ".parquet", ".yaml", ".yml",
                 ".md", ".pdf", ".html", ".ipynb", ".py", ".rst"}
_REF = re.compile(r"^(?P<name>[^@:]+)(?:@(?P<spec>[^:]+))?(?::(?P<split>[\w-]+))?$")


def is_table(value: Any) -> bool:
    return hasattr(value, "to_dict") and hasattr(value, "columns")


def find(value: Any, workspace: Workspace | None = None) -> DatasetVersion | None:
    """The saved dataset ``value`` names (``NAME``, ``NAME@V``, ``NAME@V:test``), else None."""
    if not isinstance(value, str):
        return None
    m = _REF.match(value.strip())
    if m is None or not NAME_RE.match(m["name"]):
        return None
    ws = workspace or get_workspace()
    if m["name"] not in ws.names(KIND):
        return None
    from .store import get

    ds = get(value.strip(), ws)
    _note_pipeline_read(ws, ds)
    return ds


_noted: set[tuple[str, str]] = set()


def _note_pipeline_read(ws: Workspace, ds: DatasetVersion) -> None:
    """Inside a pipeline run, record which dataset version was read, so the run's manifest lists it
    (provenance.touched collects the 'dataset' key of the runs a pipeline's kernel records)."""
    run = os.environ.get("CELLOPS_PIPELINE_RUN")
    if not run or (run, ds.ref) in _noted:
        return
    _noted.add((run, ds.ref))
    ws.record_run("dataset_read", {"dataset": ds.ref, "hash": ds.hash, "rows": len(ds.records())})


def resolve(value: Any, workspace: Workspace | None = None) -> Path | DatasetVersion | Any:
    """A path (that exists, or is written as a file name), a DatasetVersion, or ``value`` itself when it is not text."""
    if not isinstance(value, str | os.PathLike):
        return value
    path = Path(os.path.expanduser(str(value).strip()))
    if path.exists():
        return path
    ds = None if isinstance(value, os.PathLike) else find(value, workspace)
    if ds is not None:
        return ds
    if isinstance(value, os.PathLike) or "/" in str(value) or path.suffix.lower() in FILE_SUFFIXES:
        return path  # meant as a file: the consumer says "file not found" with the path
    ws = workspace or get_workspace()
    names = ws.names(KIND)
    raise NotFoundError(
        f"no file or dataset named '{value}'"
        + (f"; datasets: {', '.join(names)}" if names else "; save one with cellops.datasets.save or %%dataset")
    )


def rows(value: Any, workspace: Workspace | None = None) -> tuple[str, list[tuple[int, Any]]] | None:
    """(label, [(row number, record)]) when ``value`` names a saved dataset; None for a path or
    an object (the consumer's own reader handles those). A name that is neither raises."""
    if not isinstance(value, str | os.PathLike):
        return None
    found = resolve(value, workspace)
    if isinstance(found, Path):
        return None
    return f"dataset {found.ref}", list(enumerate(found.records(), start=1))
