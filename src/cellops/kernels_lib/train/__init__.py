"""Fine-tuning from a cell: ``cellops.finetune.launch(config) -> Job``.

``config`` is a :class:`FinetuneConfig` or a dict of its fields (``name``, ``base``, ``data``,
``method``, ``max_steps``, ``batch``, ``procs``, ``zero``, ...). The run is a real DeepSpeed job
started by the ``deepspeed`` launcher in the background; ``job.wait()``, ``job.status``,
``job.metrics`` and ``job.model`` (the registered ``NAME@V``) follow it. Heavy imports (torch,
transformers, deepspeed) happen only in the functions that need them.
"""

from __future__ import annotations

from .config import FinetuneConfig
from .job import Job
from .launch import attach, launch, runs, stop
from .resume import resume

__all__ = ["FinetuneConfig", "Job", "attach", "launch", "resume", "runs", "stop"]
