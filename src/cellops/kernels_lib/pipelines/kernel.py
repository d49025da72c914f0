"""How a pipeline notebook is executed: papermill with a cellops engine.

The engine is papermill's nbclient engine plus three things papermill cannot do from its API:
an environment for the kernel (CELLOPS_BATCH, the values file, the run id, the workspace),
a whole-run deadline (each cell gets the time left), and the default ``python3`` kernel pinned
to this interpreter, so a stray user-level kernelspec never runs the notebook in another env.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ..errors import NotFoundError

DEFAULT_KERNEL = "python3"
ENGINE = "cellops"


def check_kernel(name: str) -> list[str]:
    """The kernel's command line (argv[0] as it will run); NotFoundError when unknown."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    try:
        spec = ksm.get_kernel_spec(name)
    except NoSuchKernel:
        names = ", ".join(sorted(ksm.find_kernel_specs())) or "(none)"
        raise NotFoundError(
            f"no Jupyter kernel '{name}'; available: {names}. Install one with "
            f"`python -m ipykernel install --user --name {name}`"
        ) from None
    argv = list(spec.argv)
    if _pinned(name, argv) or argv[:1] in (["python"], ["python3"]):
        argv[0] = sys.executable
    return argv


def _pinned(name: str, argv: list[str]) -> bool:
    return name == DEFAULT_KERNEL and argv[1:3] == ["-m", "ipykernel_launcher"]


def _manager_class() -> type:
    from jupyter_client.manager import AsyncKernelManager

    class PinnedKernelManager(AsyncKernelManager):  # type: ignore[misc]
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            cmd = super().format_kernel_cmd(extra_arguments)
            if _pinned(self.kernel_name, list(self.kernel_spec.argv)):
                cmd[0] = sys.executable
            return cmd

    return PinnedKernelManager


def register_engine() -> None:
    """Register the ``cellops`` papermill engine (idempotent)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    if ENGINE in papermill_engines._engines:
        return
    manager = _manager_class()

    class CellopsEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                     stdout_file: Any = None, stderr_file: Any = None,
                                     start_timeout: int = 60, execution_timeout: Any = None,
                                     **kwargs: Any) -> Any:
            env = {**os.environ, **kwargs.pop("cellops_env")}  # the kernel inherits PATH, HOME...
            deadline = kwargs.pop("cellops_deadline", None)
            cells = kwargs.pop("cellops_cells", None)
            if cells is not None:  # a span per cell (tracking.cells.CellSpans)
                _hook_cells(nb_man, cells)
            client = PapermillNotebookClient(
                nb_man, kernel_name=kernel_name, kernel_manager_class=manager,
                startup_timeout=start_timeout, log_output=log_output, stdout_file=stdout_file,
                stderr_file=stderr_file, timeout_func=_budget(deadline),
                interrupt_on_timeout=True,
                error_on_timeout={"ename": "PipelineTimeout",
                                  "evalue": "the run's --timeout was reached in this cell",
                                  "traceback": ["PipelineTimeout: the run's --timeout was reached"]},
            )
            return client.execute(env=env)

    papermill_engines.register(ENGINE, CellopsEngine)


def _hook_cells(nb_man: Any, cells: Any) -> None:
    """Call ``cells.start/exception/complete`` around papermill's own per-cell bookkeeping."""
    start, exception, complete = nb_man.cell_start, nb_man.cell_exception, nb_man.cell_complete

    def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
        cells.start(cell, cell_index)
        return start(cell, cell_index, **kw)

    def cell_exception(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
        cells.exception(cell, cell_index, kw.get("exception"))
        return exception(cell, cell_index, **kw)

    def cell_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
        try:
            return complete(cell, cell_index, **kw)
        finally:
            cells.complete(cell, cell_index)

    nb_man.cell_start, nb_man.cell_exception, nb_man.cell_complete = cell_start, cell_exception, cell_complete


def _budget(deadline: float | None) -> Any:
    """Per-cell timeout = the time left before the run's deadline (None: no limit)."""
    if deadline is None:
        return lambda cell: None
    return lambda cell: max(1, int(deadline - time.time() + 0.999))
