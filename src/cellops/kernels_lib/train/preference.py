"""Preference tuning in the worker: TRL's DPOTrainer / KTOTrainer / ORPOTrainer on the run
folder's pairs (ORPO lives in ``trl.experimental.orpo`` in TRL 1.16; same Trainer base, same path).

They are Trainer subclasses, so everything else is the SFT path unchanged: the same DeepSpeed
config ("auto" values), callbacks, checkpoints, resume and registration. TRL tokenizes the
conversational pairs itself with the base model's chat template (prepare.py already checked them
against ``max_len`` with the same template). With LoRA the reference model is the base with the
adapter switched off (no second copy); full tuning loads a frozen reference copy. ORPO needs no
reference model: it adds an odds-ratio penalty (weight ``beta``, the paper's lambda) to the SFT loss
on the chosen answer.

The held-out log-probability margin (chosen minus rejected, summed over answer tokens) comes from
TRL's own eval metrics: the eval before the first step is the base model's, the one after the
last step the tuned model's; both go into the model card. ORPO's ``eval_logps/*`` are means per
answer token (TRL's ORPOTrainer averages), DPO's and KTO's sums, so compare margins within a method.
"""

from __future__ import annotations

from typing import Any

PAIR_KEYS = ("prompt", "chosen", "rejected")


def margin(metrics: dict[str, Any]) -> float | None:
    """Mean log p(chosen) - log p(rejected) from an eval's metrics (TRL's ``eval_logps/*``)."""
    c, r = metrics.get("eval_logps/chosen"), metrics.get("eval_logps/rejected")
    return None if c is None or r is None else float(c) - float(r)


def pairs_dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([{k: r[k] for k in PAIR_KEYS} for r in rows]) if rows else None


def trainer_config(spec: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """DPOConfig / KTOConfig / ORPOConfig from the TrainingArguments the SFT path builds, plus the loss knobs.
    TRL's own defaults that differ from the Trainer's (gradient checkpointing on, bf16 on) are
    overridden by ours, so a DPO run is configured exactly like an SFT run."""
    from trl import DPOConfig, KTOConfig

    cfg = spec["config"]
    common = {"beta": cfg["beta"], "max_length": cfg["max_len"], "dataset_num_proc": None,
              "gradient_checkpointing": bool(cfg["gradient_checkpointing"])}
    kwargs = {k: v for k, v in kwargs.items() if k not in ("activation_checkpointing", "gradient_checkpointing")}
    if cfg["method"] == "kto":
        return KTOConfig(**kwargs, **common)
    if cfg["method"] == "orpo":
        from trl.experimental.orpo import ORPOConfig

        return ORPOConfig(**kwargs, **common)
    return DPOConfig(**kwargs, **common)


def make_trainer(spec: dict[str, Any], args: Any, model: Any, tok: Any, train_rows: list[dict[str, Any]],
                 eval_rows: list[dict[str, Any]], callbacks: list[Any]) -> Any:
    from trl import DPOTrainer, KTOTrainer

    from .worker import lora_config

    method = spec["config"]["method"]
    if method == "orpo":
        from trl.experimental.orpo import ORPOTrainer as cls
    else:
        cls = KTOTrainer if method == "kto" else DPOTrainer
    return cls(model=model, args=args, processing_class=tok, train_dataset=pairs_dataset(train_rows),
               eval_dataset=pairs_dataset(eval_rows), peft_config=lora_config(spec["config"]),
               callbacks=callbacks)

