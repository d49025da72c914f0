"""The one flat training config (nanoGPT's GPTConfig style): every knob of a fine-tune, with its
default and why. ``%%finetune`` flags, the YAML cell body, ``cellops.finetune.launch(dict)`` and
the CLI all build this dataclass; ``asdict(cfg)`` goes into the run folder, the checkpoint, the
tracker's run (W&B by default) and the model card.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InvalidInputError
from ..workspace import check_name

METHODS = ("lora", "full", "dpo", "kto", "orpo")
# preference objectives: TRL's DPOTrainer / KTOTrainer / ORPOTrainer (trl.experimental) on the same launcher
PREFERENCE = ("dpo", "kto", "orpo")
# ORPO has no reference model: its odds-ratio term is against the rejected answer, not the base
REFERENCE_FREE = ("orpo",)
ADAPTERS = ("auto", "lora", "none")
FORMATS = ("auto", "chat", "alpaca", "completion", "preference")
ZERO = ("auto", "0", "1", "2", "3")
# Upper bounds for the values a run folder's run.json could set to anything: ranks per node (the
# largest CPU nodes have 256 cores, GPU nodes 8-16 devices) and a per-process memory budget.
MAX_PROCS = 256
MAX_MEMORY_GB = 16384.0
LORA_TARGETS = re.compile(r"[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*")


@dataclass
class FinetuneConfig:
    name: str = ""  # registry name of the resulting model version (NAME@V afterwards)
    base: str = "default"  # base model: default | hf:<dir> | <file.gguf> | NAME@V of a fine-tune
    data: Any = None  # JSONL / CSV path, a DataFrame, or a list of dicts (rows)
    format: str = "auto"  # auto | chat (messages) | alpaca | completion | preference (chosen/rejected)
    method: str = "lora"  # SFT: lora (adapter, merged) | full (all weights); preference: dpo | kto | orpo
    adapter: str = "auto"  # for dpo/kto/orpo: lora (auto) or none (every weight trains); SFT: set by method
    beta: float = 0.1  # dpo/kto: pull towards the base model; orpo: weight of the odds-ratio term (TRL's default)
    epochs: float = 1.0  # passes over the training split; ignored when max_steps > 0
    max_steps: int = -1  # optimizer steps; > 0 overrides epochs (short runs, tests)
    lr: float | None = None  # None: 2e-4 for lora, 2e-5 for full (the usual stable choices)
    batch: int = 4  # micro-batch per process
    grad_accum: int = 1  # micro-batches per optimizer step
    max_len: int = 512  # tokens per example; longer rows are truncated and reported
    zero: str = "auto"  # DeepSpeed ZeRO stage; auto picks from world size and memory fit
    offload: bool = False  # ZeRO-Offload optimizer (and params at stage 3) to CPU memory
    procs: int = 1  # processes (ranks) per node: GPUs, or CPU workers without GPUs
    hostfile: str | None = None  # DeepSpeed hostfile for multi-node runs (shared filesystem)
    eval_split: float = 0.1  # held-out fraction for eval loss before/after (0: no eval)
    seed: int = 42  # data split, LoRA init, shuffling
    lora_r: int = 8  # LoRA rank
    lora_alpha: int = 16  # LoRA scale numerator (scale = alpha / r)
    lora_dropout: float = 0.05
    lora_targets: str = "auto"  # comma list of module names; auto: peft's default for the arch
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    precision: str = "auto"  # auto (bf16 on GPUs that have it, else fp32) | fp32 | bf16 | fp16
    gradient_checkpointing: bool = False  # trade compute for activation memory
    save_every: int = 50  # checkpoint every N optimizer steps (resume point); 0: only at the end
    eval_every: int = 0  # eval loss every N steps as well as before/after; 0: before/after only
    log_every: int = 1  # steps between loss / tokens/s events
    samples: int = 3  # held-out prompts generated before/after for the model card
    sample_tokens: int = 48  # max new tokens per sample generation
    port: int = 0  # rendezvous port; 0 picks a free one
    memory_gb: float = 0.0  # per-process memory budget for --zero auto; 0: measure this machine
    tracker: str = ""  # experiment tracker (cellops.trackers); '': Cellops.tracker, CELLOPS_TRACKER, wandb

    def __post_init__(self) -> None:
        self.validate()

    @property
    def objective(self) -> str:
        """sft | dpo | kto | orpo: what the loss is (``method`` also says which weights train for SFT)."""
        return self.method if self.method in PREFERENCE else "sft"

    @property
    def use_lora(self) -> bool:
        return self.method == "lora" or (self.method in PREFERENCE and self.adapter != "none")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.objective == "sft":
            return 2e-4 if self.use_lora else 2e-5
        # preference losses move a model further per step than SFT: TRL's usual choices
        return 5e-5 if self.use_lora else 1e-6

    def validate(self) -> None:
        for f in fields(self):  # NaN passes every range test below, and JSON can carry it
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise InvalidInputError(f"{f.name} must be a finite number, got {v}")
        if self.name:
            check_name(self.name)
        _choice("method", self.method, METHODS)
        _choice("format", self.format, FORMATS)
        _choice("adapter", self.adapter, ADAPTERS)
        if self.method not in PREFERENCE and self.adapter != "auto":
            raise InvalidInputError(f"--adapter applies to --method {'|'.join(PREFERENCE)}; for SFT "
                                    "use --method lora or --method full")
        if self.method in PREFERENCE and self.format not in ("auto", "preference"):
            raise InvalidInputError(f"--method {self.method} trains on preference rows (prompt or "
                                    "messages, chosen, rejected): use --format preference or auto")
        if self.format == "preference" and self.method not in PREFERENCE:
            raise InvalidInputError("preference rows (chosen/rejected) train with --method dpo, kto or orpo")
        if self.method == "kto" and self.batch < 2:
            raise InvalidInputError("kto needs --batch >= 2: its KL term pairs each answer with "
                                    "another one in the same micro-batch")
        if not 0.0 < self.beta <= 10.0:
            raise InvalidInputError(f"beta must be in (0, 10], got {self.beta}")
        self.zero = str(self.zero)
        _choice("zero", self.zero, ZERO)
        _choice("precision", self.precision, ("auto", "fp32", "bf16", "fp16"))
        for key in ("batch", "grad_accum", "max_len", "procs", "lora_r", "log_every"):
            if int(getattr(self, key)) < 1:
                raise InvalidInputError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.max_len < 8:
            raise InvalidInputError(f"max_len must be >= 8 tokens, got {self.max_len}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise InvalidInputError("give epochs > 0 or max_steps > 0")
        if not 0.0 <= self.eval_split < 1.0:
            raise InvalidInputError(f"eval_split must be in [0, 1), got {self.eval_split}")
        if self.lr is not None and not 0.0 < self.lr < 1.0:
            raise InvalidInputError(f"lr must be in (0, 1), got {self.lr}")
        if not 0 <= self.port < 65536:
            raise InvalidInputError(f"port must be 0 (pick a free one) or 1-65535, got {self.port}")
        self._validate_rest()

    def _validate_rest(self) -> None:
        """The knobs a run folder's run.json could otherwise set to anything (resume checks it too)."""
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise InvalidInputError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise InvalidInputError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        for key in ("weight_decay", "grad_clip", "memory_gb", "save_every", "eval_every", "samples", "lora_alpha"):
            if getattr(self, key) < 0:
                raise InvalidInputError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.procs > MAX_PROCS:
            raise InvalidInputError(f"procs is processes per node, at most {MAX_PROCS}, got {self.procs}")
        if self.memory_gb > MAX_MEMORY_GB:
            raise InvalidInputError(f"memory_gb is the budget per process, at most {MAX_MEMORY_GB:g}, "
                                    f"got {self.memory_gb:g}")
        if self.sample_tokens < 1:
            raise InvalidInputError(f"sample_tokens must be >= 1, got {self.sample_tokens}")
        if self.lora_targets not in ("auto", "all-linear") and not LORA_TARGETS.fullmatch(self.lora_targets):
            raise InvalidInputError(f"lora_targets must be auto, all-linear or a comma list of module names "
                                    f"(q_proj,v_proj), got {self.lora_targets!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneConfig:
        """Build from a dict (YAML body, Python API); '-' in keys is accepted for '_'."""
        norm = {str(k).replace("-", "_"): v for k, v in d.items()}
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(norm) - set(known))
        if unknown:
            raise InvalidInputError(
                f"unknown finetune setting(s) {', '.join(unknown)}; valid: {', '.join(known)}"
            )
        return cls(**{k: _coerce(known[k], v) for k, v in norm.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: a DataFrame or list given as ``data`` is recorded by its kind only."""
        d = asdict(self) if not _is_table(self.data) else asdict(dataclasses.replace(self, data=None))
        if _is_table(self.data):
            d["data"] = f"<{type(self.data).__name__}>"
        d["learning_rate"] = self.learning_rate
        d["objective"], d["use_lora"] = self.objective, self.use_lora
        return d

    def replace(self, **changes: Any) -> FinetuneConfig:
        return dataclasses.replace(self, **changes)


def _is_table(v: Any) -> bool:
    return v is not None and not isinstance(v, str | bytes) and not hasattr(v, "__fspath__")


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInputError(f"{key} must be one of {'|'.join(allowed)}, got {value!r}")


def _coerce(f: dataclasses.Field[Any], v: Any) -> Any:
    """YAML and argparse give strings/ints; convert to the field's type with a clear error."""
    if v is None or f.name == "data":
        return v
    t = str(f.type)
    try:
        if t == "bool":
            if isinstance(v, str):
                if v.lower() not in {"true", "false", "yes", "no", "1", "0", "on", "off"}:
                    raise ValueError(v)
                return v.lower() in {"true", "yes", "1", "on"}
            return bool(v)
        if t == "int":
            if isinstance(v, float) and not v.is_integer():
                raise ValueError(v)
            return int(v)
        if t.startswith("float"):
            return float(v)
        return str(v)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{f.name} must be {t.split(' |')[0]}, got {v!r}") from None
