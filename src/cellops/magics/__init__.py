"""IPython glue: one Magics class (configurable as ``%config Cellops.model = ...``) that routes
each magic to its own module (``magics/<name>.py`` with ``HELP`` and ``run(ctx, line, cell)``).
"""

from __future__ import annotations

import importlib
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from traitlets import TraitError, Unicode, observe, validate

from ..kernels_lib.errors import CellopsError
from .context import MagicContext

MAGICS = ("prompt", "rag", "guard", "finetune", "chain", "trace", "dataset", "serve", "monitor", "models", "synth")


@magics_class
class Cellops(Magics):
    model = Unicode("default", help="Model URI used when a cell gives no --model.").tag(config=True)
    answer_model = Unicode(
        "", help="Model URI for %%rag ask (e.g. qwen-1.5b); empty: Cellops.model. Env: CELLOPS_ANSWER_MODEL."
    ).tag(config=True)
    judge_model = Unicode(
        "", help="Model URI for llm-rubric and the guard's llm_judge; empty: Cellops.model. Env: CELLOPS_JUDGE_MODEL."
    ).tag(config=True)
    embedder = Unicode("default", help="Embedder URI used by %%rag build.").tag(config=True)
    workspace = Unicode(
        "", help="Workspace folder (default: CELLOPS_HOME or .cellops in the current directory)."
    ).tag(config=True)

    otlp_endpoint = Unicode(
        "", help="OTLP/HTTP collector for traces (http://host:4318); '' = OTEL_EXPORTER_OTLP_ENDPOINT, 'off' = none."
    ).tag(config=True)

    tracker = Unicode(
        "", help="Experiment tracker runs log to: wandb or a plugin's (cellops.trackers); '' = CELLOPS_TRACKER, else wandb."
    ).tag(config=True)

    @validate("tracker")
    def _tracker_valid(self, proposal: dict[str, Any]) -> str:
        from ..kernels_lib.tracking import trackers

        value = str(proposal["value"]).strip()
        if value:
            try:
                trackers.get(value)  # an unknown name: %config shows the one line, the old value stays
            except CellopsError as e:
                raise TraitError(str(e)) from None
        return value

    @observe("tracker")
    def _tracker_changed(self, change: dict[str, Any]) -> None:
        from ..kernels_lib.tracking import configure

        configure(change["new"])

    @validate("otlp_endpoint")
    def _otlp_valid(self, proposal: dict[str, Any]) -> str:
        from ..kernels_lib.tracking import otel

        value = str(proposal["value"]).strip()
        if value and value != "off":
            try:
                otel.traces_url(value)
            except CellopsError as e:  # %config shows this one line and keeps the old value
                raise TraitError(str(e)) from None
        return value

    @observe("otlp_endpoint")
    def _otlp_changed(self, change: dict[str, Any]) -> None:
        from ..kernels_lib.tracking import otel

        value = change["new"]
        otel.configure(None if not value else "" if value == "off" else value)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for trait in ("model", "answer_model", "judge_model"):
            self._push_model({"name": trait, "new": getattr(self, trait)})
        if self.tracker:  # set in an IPython config file
            self._tracker_changed({"new": self.tracker})

    @observe("model", "answer_model", "judge_model")
    def _push_model(self, change: dict[str, Any]) -> None:
        """kernels_lib resolves per-task models (the guard's judge runs outside any magic)."""
        from ..kernels_lib.models.tasks import configure

        task = {"model": "prompt", "answer_model": "answer", "judge_model": "judge"}[change["name"]]
        new = change["new"]
        configure(task, "" if task == "prompt" and new == "default" else new)

    def _dispatch(self, name: str, line: str, cell: str | None) -> Any:
        from ..kernels_lib.records import cell_source

        module = importlib.import_module(f"{__name__}.{name}")
        source = self._cell_source() or (f"%{name} {line}" if cell is None else f"%%{name} {line}\n{cell}")
        try:
            with cell_source(source):  # the runs this magic records carry the cell's source
                return module.run(MagicContext(self.shell, self), line, cell)
        except CellopsError as e:
            raise UsageError(str(e)) from None

    def _cell_source(self) -> str | None:
        """The raw source of the cell running now (IPython stores it before executing it)."""
        hist = getattr(getattr(self.shell, "history_manager", None), "input_hist_raw", None)
        return hist[-1] if hist else None

    @line_cell_magic
    def prompt(self, line: str, cell: str | None = None) -> Any:
        return self._dispatch("prompt", line, cell)

    @line_cell_magic
    def rag(self, line: str, cell: str | None = None) -> Any:
        return self._dispatch("rag", line, cell)

    @line_cell_magic
    def guard(self, line: str, cell: str | None = None) -> Any:
        return self._dispatch("guard", line, cell)

    @line_cell_magic
    def finetune(self, line: str, cell: str | None = None) -> Any:
        return self._dispatch("finetune", line, cell)

    @line_cell_magic
    def chain(self, line: str, cell: str | None = None) -> Any:
        return self._dispatch("chain", line, cell)

    @line_magic
    def trace(self, line: str) -> Any:
        return self._dispatch("trace", line, None)

    @line_cell_magic
    def dataset(self, line: str, cell: str | None = None) -> Any:
        return self._dispatch("dataset", line, cell)

    @line_magic
    def serve(self, line: str) -> Any:
        return self._dispatch("serve", line, None)

    @line_magic
    def monitor(self, line: str) -> Any:
        return self._dispatch("monitor", line, None)

    @line_magic
    def models(self, line: str) -> Any:
        return self._dispatch("models", line, None)

    @line_cell_magic
    def synth(self, line: str, cell: str | None = None) -> Any:
        return self._dispatch("synth", line, cell)


def _attach_help() -> None:
    """``%%rag?`` shows the module's HELP text (each magic module keeps its own usage)."""
    for name in MAGICS:
        module = importlib.import_module(f"{__name__}.{name}")
        getattr(Cellops, name).__doc__ = getattr(module, "HELP", None)


def load(ipython: Any) -> None:
    _attach_help()
    ipython.register_magics(Cellops)


def unload(ipython: Any) -> None:
    ipython.magics_manager.registry.pop("Cellops", None)
