"""Everything that happens in the kernel before a run starts, so bad input fails in one clear
line *before* any process is launched: resolve the base model, load + validate + PII-scan +
tokenize the data, plan memory and the ZeRO stage, and write the run folder.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, JobError, ModelError, NotFoundError
from ..workspace import Workspace
from . import data as datamod
from . import events
from .config import FinetuneConfig
from .plan import GiB, ModelShape, Plan, deepspeed_config, make_plan

BASE_HELP = "use default, hf:<dir>, a .gguf file, llamacpp:<file.gguf> or NAME@V of a registered model"


def resolve_base(base: str, ws: Workspace) -> tuple[str, Path]:
    """(canonical URI, local HF folder with float32 weights) for a base model URI."""
    from ..models.hf import materialize

    base = (base or "default").strip()
    scheme, sep, spec = base.partition(":")
    if base == "default":
        return "default", Path(materialize("default", ws))
    if sep and scheme in ("hf", "llamacpp"):
        try:
            path = materialize(spec, ws)
        except ModelError as e:
            raise NotFoundError(f"unknown base model '{base}': {e}; {BASE_HELP}") from None
        if not isinstance(path, Path):  # a hub id: only usable when already in the local HF cache
            path = _cached_hub_model(spec, base)
        return base, path
    if sep and len(scheme) > 1:
        raise NotFoundError(f"cannot fine-tune '{base}': {scheme}: models are not local weights; {BASE_HELP}")
    if base.endswith(".gguf") or Path(base).expanduser().is_dir():
        return resolve_base(f"hf:{base}", ws)
    try:
        v = ws.resolve("model", base)
    except NotFoundError as e:
        raise NotFoundError(f"unknown base model '{base}' ({e}); {BASE_HELP}") from None
    if v.content.get("format", "hf") != "hf":
        raise InvalidInputError(f"model {v.ref} is stored as {v.content.get('format')}; only hf models can be fine-tuned")
    return v.ref, ws.artifact_dir("model", v.name, v.version) / v.content.get("subdir", "model")


def _cached_hub_model(model_id: str, base: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        raise NotFoundError(
            f"unknown base model '{base}': no local folder and not in the local Hugging Face cache; {BASE_HELP}"
        ) from None


def free_port(port: int) -> int:
    """``port`` if it is free (error if not); a free one for 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            raise JobError(
                f"port {port} is already in use (another training run or server?); "
                "pass --port 0 to pick a free one, or stop the other process"
            ) from None
        return int(s.getsockname()[1])


def device_and_budget(cfg: FinetuneConfig) -> tuple[str, float, bool]:
    """('cuda'|'cpu', bytes per process, bf16 supported)."""
    import torch

    if torch.cuda.is_available():
        per = torch.cuda.get_device_properties(0).total_memory * 0.9
        return "cuda", (cfg.memory_gb * GiB if cfg.memory_gb else per), torch.cuda.is_bf16_supported()
    import psutil

    per = psutil.virtual_memory().available * 0.9 / cfg.procs
    return "cpu", (cfg.memory_gb * GiB if cfg.memory_gb else per), False


def tokenizer_for(path: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load the tokenizer of {path}: {e}") from None


def write_examples(path: Path, rows: list[datamod.Row], examples: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for row, ex in zip(rows, examples, strict=True):
            f.write(json.dumps({**ex.to_dict(), "messages": row.messages}) + "\n")


def encode_split(cfg: FinetuneConfig, tok: Any, rows: list[datamod.Row]) -> tuple[list[Any], list[int], int]:
    """(examples, truncated lines, tokens): SFT rows get their labels mask, preference pairs a
    length check (TRL's trainers tokenize them with the same chat template)."""
    from .tokenize import encode_all, encode_pairs

    if cfg.objective == "sft":
        ex, cut = encode_all(tok, rows, cfg.max_len)
        return ex, cut, sum(len(e.input_ids) for e in ex)
    pairs, cut = encode_pairs(tok, rows, cfg.max_len)
    return pairs, cut, sum(e.tokens for e in pairs)


def prepare(cfg: FinetuneConfig, ws: Workspace, run_dir: Path, policy: Any | None) -> dict[str, Any]:
    """Validate everything and write the run folder; returns the run spec (run.json)."""
    if not cfg.name:
        raise InvalidInputError("a fine-tune needs a name: %%finetune NAME --base default --data PATH")
    # cheap checks first: no model is loaded for bad data
    ds = datamod.load(cfg.data, cfg.format, ws, preference=cfg.objective != "sft")
    base_uri, base_path = resolve_base(cfg.base, ws)
    if policy is not None:
        datamod.scan_pii(ds, policy)
    train_rows, eval_rows = ds.split(cfg.eval_split, cfg.seed)
    tok = tokenizer_for(base_path)
    train_ex, cut, train_tokens = encode_split(cfg, tok, train_rows)
    eval_ex, cut_eval, _ = encode_split(cfg, tok, eval_rows)
    device, budget, bf16_ok = device_and_budget(cfg)
    plan = make_plan(cfg, ModelShape.read(base_path), device, budget, bf16_ok)
    if cut or cut_eval:
        plan.notes.append(f"{len(cut) + len(cut_eval)} row(s) longer than --max-len {cfg.max_len} "
                          f"were truncated (lines {datamod.format_lines(cut + cut_eval)})")
    plan.notes.extend(ds.notes)
    per_step = cfg.batch * cfg.grad_accum * plan.world
    if cfg.max_steps <= 0 and len(train_ex) < per_step:
        plan.notes.append(f"only {len(train_ex)} training rows for {per_step} per step: 1 step per epoch")
    write_examples(run_dir / "data" / "train.jsonl", train_rows, train_ex)
    write_examples(run_dir / "data" / "eval.jsonl", eval_rows, eval_ex)
    (run_dir / "data" / "hash.txt").write_text(ds.hash + "\n")
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    (run_dir / "ds_config.json").write_text(json.dumps(deepspeed_config(plan, cfg), indent=1))
    from ..models.weights import file_hash

    return {
        "name": cfg.name, "workspace": str(ws.root), "run_dir": str(run_dir),
        "config": cfg.to_dict(), "plan": plan.to_dict(), "base_uri": base_uri,
        "base_path": str(base_path), "base_hash": file_hash(base_path),
        "data_hash": ds.hash, "data_source": ds.source, "data_format": ds.format,
        "n_train": len(train_ex), "n_eval": len(eval_ex),
        "train_tokens": train_tokens,
    }


def plan_event(run_dir: Path, spec: dict[str, Any]) -> None:
    p: Plan | dict[str, Any] = spec["plan"]
    events.append(run_dir / "events.jsonl", "plan", zero=p["stage"], reason=p["reason"],
                  notes=p["notes"], world=p["world"], device=p["device"], n_train=spec["n_train"],
                  n_eval=spec["n_eval"], data_hash=spec["data_hash"], base=spec["base_uri"])
