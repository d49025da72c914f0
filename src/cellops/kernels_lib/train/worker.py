"""The training entry point the ``deepspeed`` launcher runs in every rank.

``python -m cellops.kernels_lib.train.worker --run-dir DIR [--resume]``. Everything it needs is in
the run folder (``run.json``: config, plan, resolved base model; ``ds_config.json``;
``data/{train,eval}.jsonl`` already tokenized by the kernel), so ranks on other nodes only need
the shared filesystem. Rank 0 writes the event file and logs to the run's tracker (``track.py``:
the registered one ``run.json`` names, W&B by default); at the end it merges, samples, writes the
model card and registers the version.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from ..jsonl import read_jsonl
from . import events, shm
from .job import last_checkpoint
from .safe_load import force_weights_only

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def peak_rss_gb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _trainer_callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


class Throughput:
    """Training tokens/s over optimizer steps only (no evals, saves or the first, warm-up step).
    Shared with the benchmark so the plain-Trainer baseline is measured the same way."""

    def __init__(self) -> None:
        self.step_tokens = 0
        self.step_time = 0.0
        self.steps = 0
        self.step_seconds: list[float] = []  # every optimizer step, the warm-up one too: profiling
        # CPU seconds of this process (all its threads) over the same steps: on a shared machine the
        # wall time also counts other people's load, CPU time mostly the work this process did
        self.step_cpu = 0.0
        self._t0 = self._c0 = 0.0
        self._tok0 = 0

    def begin(self, tokens_seen: int) -> None:
        self._t0, self._c0, self._tok0 = time.perf_counter(), time.process_time(), tokens_seen

    def end(self, tokens_seen: int) -> tuple[int, float]:
        dt, dtok = time.perf_counter() - self._t0, tokens_seen - self._tok0
        self.steps += 1
        self.step_seconds.append(round(dt, 3))
        if self.steps > 1:
            self.step_time += dt
            self.step_cpu += time.process_time() - self._c0
            self.step_tokens += dtok
        return dtok, dt

    @property
    def tokens_per_s(self) -> float | None:
        return self.step_tokens / self.step_time if self.step_time > 0 else None

    @property
    def tokens_per_cpu_s(self) -> float | None:
        return self.step_tokens / self.step_cpu if self.step_cpu > 0 else None


def make_callback(run_dir: Path | None, cfg_json: dict[str, Any] | None, rank: int) -> Any:
    """A TrainerCallback that measures throughput and (rank 0, with a run folder) writes events."""
    Base = _trainer_callback_base()

    class EventCallback(Base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.tp = Throughput()
            self.path = run_dir / "events.jsonl" if run_dir and rank == 0 else None
            self._win_tokens = 0
            self._win_time = 0.0
            self._started = time.perf_counter()
            self.final = False  # set before the closing evaluate(): its eval is the "after" one

        def emit(self, kind: str, **f: Any) -> None:
            if self.path is not None:
                events.append(self.path, kind, **f)

        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
            shm.release_own()  # every rank has mapped every segment by now (see shm.py)
            self.emit("resume" if state.global_step else "start", step=state.global_step,
                      max_steps=state.max_steps, world=args.world_size)

        def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001
            self.tp.begin(state.num_input_tokens_seen)

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            dtok, dt = self.tp.end(state.num_input_tokens_seen)
            if self.tp.steps > 1 or state.max_steps == 1:
                self._win_tokens += dtok
                self._win_time += dt

        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            logs = logs or {}
            if "loss" not in logs:
                return
            rate = self._win_tokens / self._win_time if self._win_time > 0 else None
            per_step = self.tp.step_time / max(1, self.tp.steps - 1) if self.tp.steps > 1 else None
            eta = per_step * (state.max_steps - state.global_step) if per_step else None
            self.emit("log", step=state.global_step, loss=logs["loss"], lr=logs.get("learning_rate"),
                      grad_norm=logs.get("grad_norm"), tokens_seen=state.num_input_tokens_seen,
                      tokens_per_s=rate, eta_s=eta, elapsed_s=time.perf_counter() - self._started)
            self._win_tokens, self._win_time = 0, 0.0

        def on_evaluate(self, args, state, control, metrics=None, **kw):  # noqa: ANN001
            if metrics and "eval_loss" in metrics:
                from .preference import margin

                phase = "after" if self.final else ("before" if state.global_step == 0 else "during")
                self.emit("eval", step=state.global_step, eval_loss=metrics["eval_loss"], phase=phase,
                          margin=margin(metrics), reward_accuracy=metrics.get("eval_rewards/accuracies"))

        def on_save(self, args, state, control, model=None, **kw):  # noqa: ANN001
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if rank == 0 and model is not None and ckpt.is_dir():
                drop_frozen_tied_weights(ckpt, model)
            if self.path is not None and cfg_json is not None and ckpt.is_dir():
                # asdict(cfg) travels with the weights, so a checkpoint explains itself
                (ckpt / "cellops_config.json").write_text(json.dumps(cfg_json, indent=1))
            self.emit("checkpoint", step=state.global_step, path=str(ckpt))

    return EventCallback()


def drop_frozen_tied_weights(ckpt: Path, model: Any) -> None:
    """Remove frozen weights that DeepSpeed kept in a checkpoint's module states.

    For PEFT models DeepSpeed drops frozen weights by walking ``named_parameters()``, which lists
    a tied weight once: the frozen ``lm_head`` (the embedding, 113 MB for SmolLM2) stayed in every
    LoRA checkpoint next to a 2 MB adapter. Resuming loads module states non-strictly for PEFT
    models, and the frozen weights come from the base model anyway.
    """
    import torch

    frozen = {n for n, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    if not frozen:  # full fine-tuning: nothing to drop, and no need to read gigabytes
        return
    for f in ckpt.glob("global_step*/mp_rank_*_model_states.pt"):
        sd = torch.load(f, map_location="cpu", weights_only=True)
        module = sd.get("module")
        drop = [k for k in module or {} if k in frozen]
        if not drop:
            continue
        for k in drop:
            del module[k]
        tmp = f.with_suffix(".tmp")
        torch.save(sd, tmp)
        tmp.replace(f)


def load_examples(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [row for _, row in read_jsonl(path)]


def uses_lora(cfg: dict[str, Any]) -> bool:
    """Runs recorded before preference tuning existed have no ``use_lora`` key."""
    return bool(cfg.get("use_lora", cfg["method"] == "lora"))


def lora_config(cfg: dict[str, Any]) -> Any:
    """The peft LoraConfig of a run, or None for full fine-tuning."""
    if not uses_lora(cfg):
        return None
    from peft import LoraConfig

    targets = cfg["lora_targets"]
    target_modules: Any = None if targets == "auto" else (
        "all-linear" if targets == "all-linear" else [t.strip() for t in targets.split(",")])
    return LoraConfig(r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=cfg["lora_dropout"],
                      target_modules=target_modules, task_type="CAUSAL_LM")


def build_model(spec: dict[str, Any], dtype: Any, wrap_lora: bool = True) -> Any:
    """The base model, wrapped with a LoRA adapter for LoRA runs unless ``wrap_lora`` is False
    (TRL's preference trainers wrap it themselves from the LoraConfig)."""
    from transformers import AutoModelForCausalLM

    cfg = spec["config"]
    model = AutoModelForCausalLM.from_pretrained(spec["base_path"], dtype=dtype)
    if cfg["gradient_checkpointing"]:
        model.config.use_cache = False
    lc = lora_config(cfg) if wrap_lora else None
    if lc is not None:
        from peft import get_peft_model

        if cfg["gradient_checkpointing"]:
            model.enable_input_require_grads()
        model = get_peft_model(model, lc)
    return model


def training_args(spec: dict[str, Any], run_dir: Path, resume: bool, n_eval: int) -> Any:
    """TrainingArguments (SFT) or TRL's DPOConfig/KTOConfig built from the same values."""
    from transformers import TrainingArguments

    kwargs = training_kwargs(spec, run_dir, resume, n_eval)
    if spec["config"].get("objective", "sft") != "sft":
        from .preference import trainer_config

        return trainer_config(spec, kwargs)
    return TrainingArguments(**kwargs)


def training_kwargs(spec: dict[str, Any], run_dir: Path, resume: bool, n_eval: int) -> dict[str, Any]:
    cfg, plan = spec["config"], spec["plan"]
    cpu = plan["device"] == "cpu"
    return dict(
        output_dir=str(run_dir / "checkpoints"),
        per_device_train_batch_size=cfg["batch"], per_device_eval_batch_size=cfg["batch"],
        gradient_accumulation_steps=cfg["grad_accum"], learning_rate=cfg["learning_rate"],
        num_train_epochs=cfg["epochs"], max_steps=cfg["max_steps"],
        warmup_steps=cfg["warmup_ratio"], weight_decay=cfg["weight_decay"],
        max_grad_norm=cfg["grad_clip"], seed=cfg["seed"], data_seed=cfg["seed"],
        logging_steps=cfg["log_every"], logging_first_step=True,
        eval_strategy="steps" if cfg["eval_every"] and n_eval else "no",
        eval_steps=cfg["eval_every"] or None, eval_on_start=bool(n_eval) and not resume,
        save_strategy="steps" if cfg["save_every"] else "no", save_steps=cfg["save_every"] or 500,
        save_total_limit=2, deepspeed=str(run_dir / "ds_config.json"),
        use_cpu=cpu, ddp_backend="gloo" if cpu else None,
        bf16=plan["dtype"] == "bf16", fp16=plan["dtype"] == "fp16",
        **_checkpointing_arg(cfg["gradient_checkpointing"]),
        # the run's tracker is fed by track.callbacks, not by the Trainer's own integrations
        report_to="none", run_name=f"finetune-{cfg['name']}",
        disable_tqdm=True, remove_unused_columns=False, dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
    )


def _checkpointing_arg(on: bool) -> dict[str, bool]:
    """transformers 5 renamed gradient_checkpointing; pass whichever this version has."""
    from transformers import TrainingArguments

    if not on:
        return {}
    key = ("activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
           else "gradient_checkpointing")
    return {key: True}


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def train(run_dir: Path, resume: bool) -> int:
    import torch
    from transformers import AutoTokenizer, Trainer, set_seed

    from . import grad_norm, track
    from .tokenize import collate

    force_weights_only()  # DeepSpeed's resume asks for full unpickling; a crafted file must not run
    spec = json.loads((run_dir / "run.json").read_text())
    rank = int(os.environ.get("RANK", "0"))
    train_rows = load_examples(run_dir / "data" / "train.jsonl")
    eval_rows = load_examples(run_dir / "data" / "eval.jsonl")
    # Arguments first: with ZeRO-3 they register the DeepSpeed config, so from_pretrained
    # partitions the weights while loading instead of materialising a full copy per rank.
    args = training_args(spec, run_dir, resume, len(eval_rows))
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[spec["plan"]["dtype"]]
    tok = AutoTokenizer.from_pretrained(spec["base_path"])
    cb = make_callback(run_dir, spec["config"], rank)
    callbacks = [cb, *track.callbacks(spec, rank)]
    # Trainer seeds only once it is built, after the model: without this the LoRA matrices start
    # from unseeded noise and a replay's losses differ from the run's in the third decimal
    set_seed(spec["config"]["seed"])
    if spec["config"].get("objective", "sft") != "sft":
        from .preference import make_trainer

        model = build_model(spec, dtype, wrap_lora=False)
        trainer = make_trainer(spec, args, model, tok, train_rows, eval_rows, callbacks)
    else:
        model = build_model(spec, dtype)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        trainer = Trainer(model=model, args=args, train_dataset=train_rows,
                          eval_dataset=eval_rows or None, data_collator=partial(collate, pad_id=pad),
                          callbacks=callbacks)
    trainer.add_callback(grad_norm.callback(trainer))
    ckpt = last_checkpoint(run_dir / "checkpoints") if resume else None
    out = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    cb.final = True
    if eval_rows:
        trainer.evaluate()
    trainer.save_model(str(run_dir / "final"))  # collective under ZeRO-3 (gathers the shards)
    ranks = run_dir / "ranks"
    ranks.mkdir(exist_ok=True)
    # CROSS_RANK: the node rank DeepSpeed's launcher gave this rank's node (0 on a single node)
    (ranks / f"rank{rank}.json").write_text(json.dumps({"peak_rss_gb": peak_rss_gb(), "host": socket.gethostname(),
                                                        "node_rank": int(os.environ.get("CROSS_RANK", "0")),
                                                        "torch_threads": torch.get_num_threads()}))
    _barrier()
    if rank != 0:
        return 0
    metrics = {
        "train_loss": out.training_loss, "steps": trainer.state.global_step,
        "tokens_per_s": cb.tp.tokens_per_s, "tokens_per_cpu_s": cb.tp.tokens_per_cpu_s,
        "train_runtime_s": out.metrics.get("train_runtime"),
        "tokens_seen": trainer.state.num_input_tokens_seen, "step_seconds": cb.tp.step_seconds,
        "torch_threads": [json.loads(p.read_text()).get("torch_threads") for p in sorted(ranks.glob("rank*.json"))],
        "peak_rss_gb": [json.loads(p.read_text())["peak_rss_gb"] for p in sorted(ranks.glob("rank*.json"))],
    }
    del trainer, model
    from .register import register

    ref = register(run_dir, spec, metrics)
    return 0 if ref else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cellops-finetune-worker")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    a, _ = p.parse_known_args(argv)  # the launcher may add --local_rank
    run_dir = Path(a.run_dir)
    try:
        return train(run_dir, a.resume)
    except Exception as e:
        if int(os.environ.get("RANK", "0")) == 0:
            events.append(run_dir / "events.jsonl", "error", message=_one_line(e))
        raise


def _one_line(e: Exception) -> str:
    from .safe_load import refusal_line

    return refusal_line(e) or f"{type(e).__name__}: {e}"


if __name__ == "__main__":
    sys.exit(main())
