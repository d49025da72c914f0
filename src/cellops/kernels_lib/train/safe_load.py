"""Resuming a fine-tune loads tensors only, never code from its run folder.

DeepSpeed loads its checkpoint files with weights-only loading switched off, so a crafted run
folder (a cloned or shared workspace) would run code on ``%finetune resume``. Two layers close it:
``refuse_unsafe`` reads the pickles' opcodes (nothing is unpickled) in the kernel before the
launcher starts and refuses any global beyond the few types real checkpoints hold, and
``force_weights_only`` makes every ``torch.load`` in the ranks weights-only (PyTorch's
``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` overrides an explicit request for full unpickling), so a file swapped
after the check fails to load instead of running.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import JobError

# What the Trainer's rng_state.pth (numpy RNG state) and DeepSpeed's ZeRO optimizer states
# (its loss scaler) hold besides tensors and plain containers.
ALLOWED = frozenset({
    "numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct",
    "numpy.ndarray", "numpy.dtype",
    "deepspeed.runtime.fp16.loss_scaler.LossScaler", "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
})
# The files DeepSpeed (global_step*/*.pt) and the Trainer (rng_state*.pth, scheduler.pt,
# optimizer.pt, scaler.pt, pytorch_model.bin) torch.load on resume; the rest is JSON, safetensors
# or text, or (zero_to_fp32.py) never loaded. training_args.bin, a pickle of the arguments, is
# written for people and never read on resume; under force_weights_only a load of it would fail.
TORCH_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt"})
NOT_LOADED_NAMES = frozenset({"training_args.bin"})


def _allowed(name: str) -> bool:
    return name in ALLOWED or (name.startswith("numpy.dtypes.") and name.endswith("DType"))


def refuse_unsafe(ckpt: Path) -> None:
    """Raise JobError naming the first file in ``ckpt`` that holds more than tensors."""
    import torch

    for f in sorted(p for p in ckpt.rglob("*") if p.is_file()):
        if f.suffix not in TORCH_SUFFIXES or f.name in NOT_LOADED_NAMES:
            continue
        try:
            found = torch.serialization.get_unsafe_globals_in_checkpoint(f)
        except Exception as e:  # not torch's zip format (a raw pickle, a truncated file): not ours
            bad = f"no torch checkpoint ({type(e).__name__})"
        else:
            bad = next((g for g in found if not _allowed(g)), "")
        if bad:
            raise JobError(
                f"refusing to resume: {f.relative_to(ckpt.parent)} holds {bad}, not only tensors "
                "(loading it could run code); start the run again with %%finetune")


def force_weights_only() -> None:
    """Make every later ``torch.load`` of this process weights-only, allowing ALLOWED's types."""
    import numpy as np
    import torch
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler

    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    np_core = getattr(np, "_core", None) or np.core
    torch.serialization.add_safe_globals([
        np_core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32)),
        LossScaler, DynamicLossScaler,
    ])


def refusal_line(e: BaseException) -> str | None:
    """The one line for a load that force_weights_only refused (PyTorch's UnpicklingError carries
    many lines of advice), None for any other error. Matched by type name: this module never
    imports the pickle machinery."""
    if type(e).__name__ != "UnpicklingError":
        return None
    return ("a checkpoint file holds more than tensors and was refused (loading it could run code): "
            + str(e).strip().splitlines()[0])
