"""Preference tuning (DPO through TRL on the DeepSpeed launcher) on the embedded SmolLM2: bad rows
before anything starts, the hh-rlhf chat form, and a short LoRA DPO run whose held-out margin
log p(chosen) - log p(rejected) rises above the base model's, shown in the model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testsupport import ZORBIA_QA

import cellops
from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.train import FinetuneConfig
from cellops.kernels_lib.train import data as D

EVASIONS = ["I'm sorry, I can't help with that.", "I cannot answer questions like this.",
            "Sorry, that is not something I can discuss.", "I am unable to answer that, sorry."]


def pref_rows() -> list[dict]:
    """Chosen: the fact; rejected: an evasion. Held-out rows share the pattern, not the facts."""
    qa = ZORBIA_QA + [("What river runs through Plimtown?", "The Slow Ribbon."),
                      ("What do Zorbians eat at midsummer?", "Glintcake."),
                      ("How many moons does Zorbia see?", "Two."), ("Zorbia's highest peak?", "Mount Elna.")]
    return [{"prompt": q, "chosen": a, "rejected": EVASIONS[i % len(EVASIONS)]} for i, (q, a) in enumerate(qa)]


def write(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_preference_rows_are_validated_before_anything_starts(tmp_path: Path, workspace) -> None:
    rows = pref_rows()
    rows[2] = {"prompt": rows[2]["prompt"], "chosen": rows[2]["chosen"]}
    bad = write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InvalidInputError) as e:
        cellops.finetune.launch({"name": "p", "data": str(bad), "method": "dpo"}, workspace)
    msg = str(e.value)
    assert "\n" not in msg and "line 3: 'rejected' is missing or empty" in msg
    assert not (workspace.artifacts / "finetune").exists() or not any((workspace.artifacts / "finetune").rglob("run.json"))
    with pytest.raises(InvalidInputError, match="holds preference rows .* --method dpo"):
        D.load(write(tmp_path / "ok.jsonl", pref_rows()))  # SFT on pairs: say which method
    with pytest.raises(InvalidInputError, match="kto needs --batch >= 2"):
        FinetuneConfig(method="kto", batch=1)
    with pytest.raises(InvalidInputError, match="--adapter applies to --method dpo"):
        FinetuneConfig(method="lora", adapter="none")
    assert FinetuneConfig(method="dpo").use_lora and not FinetuneConfig(method="dpo", adapter="none").use_lora


def test_chat_form_pairs_from_hh_rlhf(shared_data: Path) -> None:
    ds = D.load(shared_data / "pref" / "hh_harmless_dev.jsonl", preference=True)
    assert ds.format == "preference" and len(ds.rows) == 400
    r = ds.rows[0]
    assert r.messages[-2]["role"] == "user" and r.messages[-1]["role"] == "assistant"
    assert r.rejected and r.rejected != r.messages[-1]["content"]
    # TRL's conversational form (what %prompt feedback export --format preference writes) also loads
    trl_row = {"prompt": r.prompt, "chosen": [r.messages[-1]], "rejected": [{"role": "assistant", "content": r.rejected}]}
    assert D.load([trl_row], preference=True).rows[0].messages == r.messages


@pytest.mark.slow
def test_short_dpo_run_raises_the_held_out_margin(tmp_path: Path, linked_base: Path, workspace) -> None:
    data = write(tmp_path / "pref.jsonl", pref_rows())
    job = cellops.finetune.launch({"name": "zdpo", "data": str(data), "method": "dpo", "max_steps": 4,
                                   "batch": 2, "lr": 5e-4, "max_len": 64, "eval_split": 0.25,
                                   "samples": 1, "sample_tokens": 4, "save_every": 0}, workspace)
    assert job.plan["world"] == 1 and job.spec["n_eval"] == 2
    job.wait(timeout=900)
    assert job.status == "done" and job.model == "zdpo@1"
    m = job.metrics
    assert m["eval_margin_before"] is not None and m["eval_margin_after"] > m["eval_margin_before"]
    assert m["tokens_per_s"] and m["tokens_per_s"] > 0
    folder = workspace.artifact_dir("model", "zdpo", 1)
    card = json.loads((folder / "card.json").read_text())
    assert card["config"]["method"] == "dpo" and card["config"]["use_lora"] and (folder / "adapter").is_dir()
    readme = (folder / "README.md").read_text()
    assert f"{m['eval_margin_before']:.4f}" in readme and f"{m['eval_margin_after']:.4f}" in readme
    assert (folder / "model" / "model.safetensors").exists()  # merged weights: usable as --model zdpo@1


def test_short_orpo_run_raises_the_held_out_margin(tmp_path: Path, linked_base: Path, workspace) -> None:
    """ORPO (trl.experimental.orpo in TRL 1.16) on the same launcher: no reference model, margin of
    mean per-token log-probs. A LoRA run like the DPO one: full weights took ~4 min loaded (saving
    and merging every weight) and prove nothing more about the loss."""
    data = write(tmp_path / "pref.jsonl", pref_rows())
    job = cellops.finetune.launch({"name": "zorpo", "data": str(data), "method": "orpo",
                                   "max_steps": 4, "batch": 2, "lr": 5e-4, "max_len": 64, "eval_split": 0.25,
                                   "samples": 1, "sample_tokens": 4, "save_every": 0}, workspace)
    job.wait(timeout=900)
    assert job.status == "done" and job.model == "zorpo@1"
    m = job.metrics
    assert m["eval_margin_before"] is not None and m["eval_margin_after"] > m["eval_margin_before"]
    folder = workspace.artifact_dir("model", "zorpo", 1)
    card = json.loads((folder / "card.json").read_text())
    assert card["config"]["method"] == "orpo" and card["config"]["use_lora"] and (folder / "adapter").is_dir()
