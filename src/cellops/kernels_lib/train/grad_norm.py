"""``grad_norm`` in the events of runs at DeepSpeed ZeRO-0 in fp32 (every CPU run).

Under DeepSpeed the Trainer logs ``grad_norm`` from ``engine.get_global_grad_norm()``, which the
engine copies after each step from its optimizer's ``_global_grad_norm``: DeepSpeed's ZeRO-1/2/3,
fp16 and bf16 optimizers compute one. At ZeRO-0 in fp32 the optimizer is the Trainer's plain
torch AdamW, which has none, and the engine's own clipping (``clip_fp32_gradients``) computes the
norm and drops it, so the norm stayed None and every event said ``grad_norm: null`` (DeepSpeed
issue 7255); without DeepSpeed the Trainer reports the pre-clip norm.

:func:`keep_grad_norm` moves that one clipping call into a step pre-hook of the optimizer: the
same DeepSpeed function on the same gradients at the same moment (after the gradients are
averaged over ranks, right before the update), whose return value — the pre-clip norm — now
becomes the engine's ``_global_grad_norm``. With clipping off (``grad_clip: 0``) it still
measures the norm and scales nothing, as the Trainer does.
"""

from __future__ import annotations

import math
from typing import Any


def keep_grad_norm(engine: Any) -> bool:
    """Make ``engine.get_global_grad_norm()`` report the pre-clip norm; False where DeepSpeed's own
    optimizer already does (ZeRO-1/2/3, fp16, bf16) or ``engine`` is not a DeepSpeed engine."""
    if not hasattr(engine, "clip_fp32_gradients") or not hasattr(engine.optimizer, "register_step_pre_hook"):
        return False
    # the engine's own test for calling clip_fp32_gradients (its other optimizers keep the norm;
    # bf16's sets it only once it has stepped, so the attribute cannot be asked for here)
    if engine.fp16_enabled() or engine.bfloat16_enabled() or engine.zero_optimization():
        return False
    optimizer = engine.optimizer
    from deepspeed.runtime.utils import clip_grad_norm_

    def clip_and_keep(*_: Any) -> None:
        # as DeepSpeed's clip_fp32_gradients, keeping what it returns (a collective over ranks:
        # every rank steps, so every rank gets here)
        engine._global_grad_norm = clip_grad_norm_(
            parameters=engine.module.parameters(), max_norm=engine.gradient_clipping() or math.inf,
            mpu=engine.mpu)

    engine.clip_fp32_gradients = lambda: None  # clipped by the hook, just before the update
    optimizer.register_step_pre_hook(clip_and_keep)
    return True


def callback(trainer: Any) -> Any:
    """A TrainerCallback that applies :func:`keep_grad_norm` once DeepSpeed has built the engine."""
    from transformers import TrainerCallback

    class GradNorm(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
            keep_grad_norm(getattr(trainer, "deepspeed", None))

    return GradNorm()
