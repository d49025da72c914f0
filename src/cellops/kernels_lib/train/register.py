"""End of a run (rank 0): merge LoRA into the weights, generate before/after samples on held-out
prompts, write the model card and register the result as a ``model`` version.

The registered folder holds ``model/`` (plain HF weights + tokenizer, what ``get_llm("NAME@V")``
loads), ``adapter/`` for LoRA runs (small, to re-apply elsewhere), ``card.json`` and ``README.md``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..jsonl import read_jsonl
from ..workspace import get_workspace
from . import events, track
from .config import PREFERENCE
from .worker import uses_lora


def _generate(model: Any, tok: Any, messages: list[dict[str, str]], max_new: int) -> str:
    import torch

    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=pad,
                             temperature=None, top_p=None, top_k=None)
    return tok.decode(out[0][enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def sample_prompts(run_dir: Path, n: int) -> list[dict[str, Any]]:
    """Held-out conversations cut before their last answer (training rows if nothing is held out)."""
    out: list[dict[str, Any]] = []
    if n <= 0:
        return out
    for name in ("eval.jsonl", "train.jsonl"):
        path = run_dir / "data" / name
        if path.exists():
            for _, row in read_jsonl(path):
                msgs = row["messages"]
                out.append({"line": row["line"], "messages": msgs[:-1], "reference": msgs[-1]["content"],
                            "split": name.split(".")[0]})
                if len(out) >= n:
                    return out
    return out


def merged_model(spec: dict[str, Any], run_dir: Path, staging: Path) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Write staging/model (+ staging/adapter); return (tokenizer, merged model, samples)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = spec["config"]
    final = run_dir / "final"
    try:  # after a ZeRO-3 run, from_pretrained would still partition weights (to size 0) on load
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
    except ImportError:
        pass
    tok = AutoTokenizer.from_pretrained(spec["base_path"])
    prompts = sample_prompts(run_dir, cfg["samples"])
    base = AutoModelForCausalLM.from_pretrained(spec["base_path"], dtype=torch.float32)
    base.eval()
    for s in prompts:
        s["before"] = _generate(base, tok, s["messages"], cfg["sample_tokens"])
    if uses_lora(cfg):
        from peft import PeftModel

        shutil.copytree(final, staging / "adapter")
        model = PeftModel.from_pretrained(base, str(final)).merge_and_unload()
    else:
        del base
        model = AutoModelForCausalLM.from_pretrained(str(final), dtype=torch.float32)
    model.eval()
    for s in prompts:
        s["after"] = _generate(model, tok, s["messages"], cfg["sample_tokens"])
    model.save_pretrained(staging / "model")
    tok.save_pretrained(staging / "model")
    return tok, model, prompts


def card_markdown(card: dict[str, Any]) -> str:
    m = card["metrics"]
    cfg = card["config"]
    fmt = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = [
        "---", f"base_model: {card['base_model']}", "library_name: transformers",
        f"tags: [cellops, {cfg['method']}, deepspeed]", "---", "",
        f"# {card['name']} (fine-tune of {card['base_model']})", "",
        f"Method **{cfg['method']}**{' (LoRA)' if cfg['method'] in PREFERENCE and uses_lora(cfg) else ''}, "
        f"ZeRO-{card['zero_stage']} on {card['world']} process(es); "
        f"data hash `{card['data_hash'][:16]}` ({card['n_train']} train / {card['n_eval']} held-out rows).", "",
        "| metric | value |", "|---|---|",
        f"| eval loss before | {fmt(m.get('eval_loss_before'))} |",
        f"| eval loss after | {fmt(m.get('eval_loss_after'))} |",
        *([f"| held-out margin log p(chosen) - log p(rejected), base model | {fmt(m['eval_margin_before'])} |",
           f"| held-out margin log p(chosen) - log p(rejected), tuned | {fmt(m.get('eval_margin_after'))} |"]
          if m.get("eval_margin_before") is not None else []),
        f"| train loss | {fmt(m.get('train_loss'))} |", f"| steps | {fmt(m.get('steps'))} |",
        f"| tokens/s | {fmt(m.get('tokens_per_s'))} |", "", "## Samples (held-out prompts)", "",
    ]
    for s in card["samples"]:
        lines += [f"**Prompt** (line {s['line']}): {s['messages'][-1]['content']}", "",
                  f"- reference: {s['reference']}", f"- before: {s['before']}", f"- after: {s['after']}", ""]
    lines += ["## Config", "", "```json", json.dumps(cfg, indent=1), "```", ""]
    return "\n".join(lines)


def register(run_dir: Path, spec: dict[str, Any], metrics: dict[str, Any]) -> str:
    ws = get_workspace(spec["workspace"])
    cfg = spec["config"]
    ev = events.summarize(events.read_all(run_dir / "events.jsonl"))
    metrics = {k: ev[k] for k in ("eval_loss_before", "eval_loss_after", "eval_margin_before",
                                  "eval_margin_after")} | metrics
    staging = ws.staging_dir()
    try:
        _, _, samples = merged_model(spec, run_dir, staging)
        for s in samples:
            events.append(run_dir / "events.jsonl", "sample", **s)
        tracked = track.finish(spec, metrics, samples)
        card = {
            "name": cfg["name"], "base_model": spec["base_uri"], "base_weights_hash": spec["base_hash"],
            "data_hash": spec["data_hash"], "data_source": spec["data_source"],
            "n_train": spec["n_train"], "n_eval": spec["n_eval"], "config": cfg,
            "zero_stage": spec["plan"]["stage"], "world": spec["plan"]["world"], "metrics": metrics,
            "samples": samples, "run_id": spec["run_id"], **tracked,
        }
        (staging / "card.json").write_text(json.dumps(card, indent=1, default=str))
        (staging / "README.md").write_text(card_markdown(card))
        content = {
            "format": "hf", "subdir": "model", "adapter": "adapter" if uses_lora(cfg) else None,
            "base": spec["base_uri"], "base_weights_hash": spec["base_hash"], "method": cfg["method"],
            "data_hash": spec["data_hash"], "config": cfg, "metrics": metrics, "run_id": spec["run_id"],
        }
        version, _ = ws.save_version("model", cfg["name"], content, artifact=staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    ws.update_run(spec["run_id"], status="done", model=version.ref, metrics=metrics)
    events.append(run_dir / "events.jsonl", "done", model=version.ref, **metrics)
    return version.ref

