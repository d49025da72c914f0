"""Planning a run before it starts: memory per process, the ZeRO stage, the DeepSpeed JSON.

``--zero auto`` picks the smallest stage whose estimated per-process memory fits the budget.
Sharding (ZeRO-1/2/3) only pays when a full replica does not fit: with one process it saves
nothing, and measured on this 2-core CPU ZeRO-2 trained at half the speed of ZeRO-0. The estimate
is deliberately simple (weights + grads + Adam states + activations + logits + runtime); it exists
to refuse a run that cannot fit *before* it starts, and to say why.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, JobError
from .config import REFERENCE_FREE, FinetuneConfig

GiB = 1024**3
RUNTIME_BYTES = 1.0 * GiB  # python + torch + transformers + deepspeed in each process


@dataclass
class ModelShape:
    params: int
    hidden: int
    layers: int
    inter: int
    vocab: int
    kv_dim: int

    @classmethod
    def read(cls, folder: Path) -> ModelShape:
        cfg = json.loads((folder / "config.json").read_text())
        cfg = cfg.get("text_config", cfg)
        h = int(cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model"))
        heads = int(cfg.get("num_attention_heads") or cfg.get("n_head") or 1)
        kv = int(cfg.get("num_key_value_heads") or heads)
        return cls(
            params=count_params(folder),
            hidden=h,
            layers=int(cfg.get("num_hidden_layers") or cfg.get("n_layer")),
            inter=int(cfg.get("intermediate_size") or 4 * h),
            vocab=int(cfg.get("vocab_size")),
            kv_dim=h * kv // heads,
        )


def count_params(folder: Path) -> int:
    """Parameter count from safetensors headers (no weights are read)."""
    total = 0
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise InvalidInputError(f"no *.safetensors weights in {folder}; save the model with safetensors")
    for f in files:
        with open(f, "rb") as fp:
            (n,) = struct.unpack("<Q", fp.read(8))
            header = json.loads(fp.read(n))
        for key, meta in header.items():
            if key != "__metadata__":
                size = 1
                for d in meta["shape"]:
                    size *= d
                total += size
    return total


def lora_params(cfg: FinetuneConfig, m: ModelShape) -> int:
    """LoRA adds r x (in + out) per targeted linear layer."""
    dims = {"q_proj": 2 * m.hidden, "o_proj": 2 * m.hidden, "k_proj": m.hidden + m.kv_dim,
            "v_proj": m.hidden + m.kv_dim, "gate_proj": m.hidden + m.inter,
            "up_proj": m.hidden + m.inter, "down_proj": m.hidden + m.inter}
    if cfg.lora_targets == "auto":
        names = ["q_proj", "v_proj"]  # peft's default for llama-style models
    elif cfg.lora_targets == "all-linear":
        names = list(dims)
    else:
        names = [t.strip() for t in cfg.lora_targets.split(",") if t.strip()]
    return sum(cfg.lora_r * dims.get(n, 2 * m.hidden) for n in names) * m.layers


@dataclass
class Memory:
    weights: float
    grads: float
    optimizer: float
    activations: float
    runtime: float = RUNTIME_BYTES

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer + self.activations + self.runtime

    def describe(self) -> str:
        parts = ("weights", "grads", "optimizer", "activations", "runtime")
        return ", ".join(f"{p} {getattr(self, p) / GiB:.1f}" for p in parts) + " GiB"


def estimate(cfg: FinetuneConfig, m: ModelShape, stage: int, world: int, dtype_bytes: int,
             on_gpu: bool) -> Memory:
    """Bytes per process at a ZeRO stage (what each stage shards over ``world`` processes)."""
    trainable = lora_params(cfg, m) if cfg.use_lora else m.params
    mixed = dtype_bytes < 4
    # full DPO/KTO keeps a frozen reference copy (LoRA gets it by switching the adapter off); ORPO has none
    copies = 2 if cfg.objective not in ("sft", *REFERENCE_FREE) and not cfg.use_lora else 1
    weights = m.params * dtype_bytes * copies
    grads = trainable * dtype_bytes
    optimizer = trainable * (8 + (4 if mixed else 0))  # Adam m and v (+ fp32 master weights)
    if stage >= 1:
        optimizer /= world
    if stage >= 2:
        grads /= world
    if stage >= 3:
        weights /= world
    if cfg.offload and on_gpu:  # ZeRO-Offload keeps these in host memory instead
        optimizer = 0.0
        if stage >= 3:
            weights = 0.0
    # a preference batch holds chosen and rejected sequences: twice the rows per micro-batch
    b, s = cfg.batch * (1 if cfg.objective == "sft" else 2), cfg.max_len
    act_bytes = max(dtype_bytes, 2)
    if cfg.gradient_checkpointing:  # one saved input per layer + one layer live
        per_layer = b * s * m.hidden * act_bytes * m.layers + b * s * (10 * m.hidden + 4 * m.inter) * act_bytes
        acts = float(per_layer)
    else:
        acts = float(b * s * (10 * m.hidden + 4 * m.inter) * act_bytes * m.layers)
    acts += b * s * m.vocab * 4 * 3  # fp32 logits, log-softmax and their gradient
    return Memory(weights, grads, optimizer, acts)


@dataclass
class Plan:
    stage: int
    reason: str
    world: int
    nodes: int
    device: str  # "cpu" or "cuda"
    dtype: str  # fp32 | bf16 | fp16
    budget_gb: float
    need_gb: float
    memory: dict[str, float]
    params: int
    trainable: int
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hostfile_nodes(path: str | None) -> int:
    from .nodes import hosts

    return len(hosts(path)) if path else 1


def make_plan(cfg: FinetuneConfig, m: ModelShape, device: str, budget_bytes: float,
              bf16_ok: bool = False) -> Plan:
    nodes = hostfile_nodes(cfg.hostfile)
    world = nodes * cfg.procs
    dtype = cfg.precision if cfg.precision != "auto" else ("bf16" if device == "cuda" and bf16_ok else "fp32")
    if dtype != "fp32" and device == "cpu":
        raise InvalidInputError(f"precision {dtype} needs a GPU; on CPU use --precision fp32 (or auto)")
    nbytes = 4 if dtype == "fp32" else 2
    on_gpu = device == "cuda"
    notes: list[str] = []
    if cfg.offload and not on_gpu:
        notes.append("--offload ignored: training already keeps everything in CPU memory")
    mems = {s: estimate(cfg, m, s, world, nbytes, on_gpu) for s in range(4)}
    where = "per GPU" if on_gpu else "per process"
    if cfg.zero == "auto":
        stage, reason = _auto(mems, world, budget_bytes, where)
    else:
        stage = int(cfg.zero)
        if mems[stage].total > budget_bytes:
            raise JobError(_no_fit(cfg, mems[stage], budget_bytes, f"ZeRO-{stage}", world, where))
        reason = (f"ZeRO-{stage} as asked; needs ~{mems[stage].total / GiB:.1f} of "
                  f"{budget_bytes / GiB:.1f} GiB {where}")
        if world == 1 and stage > 0:
            notes.append("with 1 process ZeRO shards nothing and only adds overhead; --zero auto would use 0")
    trainable = lora_params(cfg, m) if cfg.use_lora else m.params
    mem = mems[stage]
    return Plan(stage, reason, world, nodes, device, dtype, round(budget_bytes / GiB, 2),
                round(mem.total / GiB, 2),
                {k: round(getattr(mem, k) / GiB, 3) for k in ("weights", "grads", "optimizer", "activations", "runtime")},
                m.params, trainable, notes)


def _auto(mems: dict[int, Memory], world: int, budget: float, where: str) -> tuple[int, str]:
    full = mems[0]
    if full.total <= budget:
        why = ("1 process: sharding would save nothing and only add overhead" if world == 1 else
               f"{world} processes and a full replica fits, so plain data parallel is fastest")
        return 0, f"ZeRO-0 (auto): {why}; needs ~{full.total / GiB:.1f} of {budget / GiB:.1f} GiB {where}"
    if world > 1:
        for stage in (1, 2, 3):
            if mems[stage].total <= budget:
                return stage, (
                    f"ZeRO-{stage} (auto): a full replica needs ~{full.total / GiB:.1f} GiB {where}, over "
                    f"the {budget / GiB:.1f} GiB budget; ZeRO-{stage} over {world} processes needs "
                    f"~{mems[stage].total / GiB:.1f} GiB"
                )
    raise JobError(_no_fit(None, mems[3 if world > 1 else 0], budget,
                           "ZeRO-3" if world > 1 else "1 process", world, where))


def _no_fit(cfg: FinetuneConfig | None, mem: Memory, budget: float, what: str, world: int,
            where: str) -> str:
    return (
        f"this run cannot fit: it needs ~{mem.total / GiB:.1f} GiB {where} with {what} "
        f"({mem.describe()}) but {budget / GiB:.1f} GiB is available; use --method lora, a smaller "
        "--batch or --max-len, gradient_checkpointing, more --procs, or --offload on GPUs"
    )


def deepspeed_config(plan: Plan, cfg: FinetuneConfig) -> dict[str, Any]:
    """The DeepSpeed JSON. Values the HF Trainer also sets are "auto" (it fills them in and
    refuses mismatches); the ZeRO section is ours."""
    zero: dict[str, Any] = {"stage": plan.stage}
    if plan.stage >= 2:
        zero |= {"overlap_comm": plan.device == "cuda", "contiguous_gradients": True}
    if plan.stage == 3:
        zero |= {"stage3_gather_16bit_weights_on_model_save": True}
    if cfg.offload and plan.device == "cuda" and plan.stage >= 1:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if plan.stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
        # The Trainer's torch AdamW is used at every stage (DeepSpeed's fused/CPU Adam would need
        # compiled ops that CPU-only and minimal installs lack).
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
