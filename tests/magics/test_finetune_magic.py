"""%%finetune through a real InteractiveShell: settings from flags + YAML body, bad input as one
UsageError line, and one real LoRA run on the embedded model that is registered, used by
%%prompt and %%rag --model NAME@V, shown by %finetune status/attach and the live dashboard, with W&B offline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from testsupport import zorbia_rows

from cellops.kernels_lib.tracking import traces
from cellops.magics import finetune as F
from cellops.magics.context import MagicContext


def ctx_of(ip) -> MagicContext:
    return MagicContext(ip, ip.magics_manager.registry["Cellops"])


def test_flags_override_the_yaml_body_and_data_can_be_a_variable(ip) -> None:
    ip.user_ns["t_df"] = pd.DataFrame(zorbia_rows())
    cfg, a = F.build_config(ctx_of(ip), "m1 --max-steps 3 --data t_df --zero 2 --offload --tracker wandb -o t_j",
                            "method: full\nlora_r: 4\nmax_steps: 9\neval-split: 0.2\n")
    assert (cfg.name, cfg.max_steps, cfg.method, cfg.lora_r, cfg.zero, cfg.offload, cfg.eval_split, cfg.tracker) == (
        "m1", 3, "full", 4, "2", True, 0.2, "wandb")
    assert cfg.data is ip.user_ns["t_df"] and a.output == "t_j"
    cfg, _ = F.build_config(ctx_of(ip), "m2", "data: some/file.jsonl\n")
    assert cfg.data == "some/file.jsonl" and cfg.base == "default" and cfg.zero == "auto"
    with pytest.raises(UsageError, match="must be YAML"):
        F.build_config(ctx_of(ip), "m3", "- a\n- b\n")
    with pytest.raises(UsageError, match="--zero: invalid choice"):
        F.build_config(ctx_of(ip), "m3 --zero 5", "")
    assert "%finetune status [NAME]" in F.HELP and "--max-steps" in F.HELP


def test_bad_input_is_one_usage_line(ip, tmp_path: Path, workspace) -> None:
    ip.user_ns["t_empty"] = pd.DataFrame({"prompt": [], "completion": []})
    with pytest.raises(UsageError, match="data file not found: .*missing.jsonl"):
        ip.run_line_magic("finetune", f"m --data {tmp_path}/missing.jsonl")  # line form = a run
    with pytest.raises(UsageError, match="empty dataset|is empty"):
        ip.run_cell_magic("finetune", "m --data t_empty", "# no settings")
    with pytest.raises(UsageError, match="unknown finetune setting.*lora_rank"):
        ip.run_cell_magic("finetune", "m", "lora_rank: 4\n")
    with pytest.raises(UsageError, match="unknown tracker 'nope'; available: .*wandb"):
        ip.run_line_magic("finetune", f"m --data {tmp_path}/missing.jsonl --tracker nope")  # before any work
    with pytest.raises(UsageError, match="no fine-tuning run named 'ghost'"):
        ip.run_line_magic("finetune", "attach ghost")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}) + "\n"
                     + json.dumps({"prompt": "Bye?", "chosen": "Goodbye!"}) + "\n")
    with pytest.raises(UsageError, match="line 2: 'rejected' is missing or empty"):
        ip.run_line_magic("finetune", f"m --method dpo --beta 0.2 --data {pairs}")
    out = ip.run_line_magic("finetune", "status")
    assert "no fine-tuning runs yet" in out._repr_mimebundle_()["text/plain"]


@pytest.mark.slow
def test_cell_trains_registers_and_the_model_answers_prompts(ip, zorbia_data: Path, workspace, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CELLOPS_WANDB", "on")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)  # -> offline: no account here
    ip.run_cell_magic(
        "finetune",
        f"zmag --base default --data {zorbia_data} --max-steps 3 --lr 1e-3 --batch 2 --max-len 48 "
        "--eval-split 0.25 --save-every 0 -o t_job",
        "samples: 1\nsample_tokens: 8\n",
    )
    job = ip.user_ns["t_job"]
    out = capsys.readouterr().out
    assert "ZeRO-0 (auto): 1 process" in out and "step 3/3" in out  # progress streamed to the cell
    assert job.status == "done" and job.model == "zmag@1"
    launch_trace = traces.get(workspace.get_run(job.run_id)["record"]["trace_id"])
    assert [s.name for s in launch_trace.spans] == ["finetune zmag", "prepare", "launch"]
    assert launch_trace.summary.run_id == job.run_id and launch_trace.spans[2].attrs["cellops.pid"] > 0
    m = job.metrics
    assert m["eval_loss_after"] < m["eval_loss_before"]  # it learned the held-out facts' style
    assert [s for s, _ in m["losses"]] == [1, 2, 3] and m["tokens_per_s"] > 0
    # the pre-clip gradient norm of every step (DeepSpeed ZeRO-0 in fp32 used to leave it None)
    norms = [e["grad_norm"] for e in job.events() if e["kind"] == "log"]
    assert len(norms) == 3 and all(isinstance(g, float) and g > 0 for g in norms)
    # the registry version: merged weights + adapter + card
    v = workspace.resolve("model", "zmag@1")
    folder = workspace.artifact_dir("model", "zmag", 1)
    assert v.content["format"] == "hf" and v.content["subdir"] == "model"
    assert v.content["data_hash"] == job.spec["data_hash"] and v.content["base"] == "default"
    assert (folder / "model" / "model.safetensors").exists() and (folder / "adapter" / "adapter_config.json").exists()
    card = json.loads((folder / "card.json").read_text())
    assert card["base_model"] == "default" and card["data_hash"] == job.spec["data_hash"]
    assert card["config"]["max_steps"] == 3 and card["metrics"]["eval_loss_after"] == m["eval_loss_after"]
    assert card["samples"][0]["before"] and card["samples"][0]["after"]
    assert "eval loss before" in (folder / "README.md").read_text()
    # LoRA was merged: a targeted weight differs from the base, an untouched one does not
    from safetensors.torch import load_file

    tuned = load_file(folder / "model" / "model.safetensors")
    base = load_file(Path(job.spec["base_path"]) / "model.safetensors")
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not (tuned[q] == base[q]).all()
    assert (tuned["model.layers.0.mlp.up_proj.weight"] == base["model.layers.0.mlp.up_proj.weight"]).all()
    # W&B offline run ft-<run id> inside the run folder, through the tracker registry; cited by
    # the training record and the model card
    (wb,) = (job.run_dir / "wandb").glob(f"offline-run-*-ft-{job.run_id}")
    (log_file,) = (f for f in wb.iterdir() if f.suffix == ".wandb")
    logged = log_file.read_bytes()  # W&B's record log: the history keys are plain strings in it
    assert all(k in logged for k in (b"train/loss", b"train/grad_norm", b"eval/loss", b"samples"))
    rec = workspace.get_run(job.run_id)["record"]
    assert (rec["tracker"], rec["tracker_run_id"]) == ("wandb", f"ft-{job.run_id}")
    assert (card["tracker"], card["tracker_run_id"]) == ("wandb", f"ft-{job.run_id}")
    # the fine-tune answers prompts by its registry name
    ip.run_cell_magic("prompt", "zq --model zmag@1 --max-tokens 8 -o t_r", "What is the capital of Zorbia?")
    r = ip.user_ns["t_r"]
    assert r.text.strip() and workspace.get_run(r.run_id)["record"]["model"] == "zmag@1"
    ip.user_ns["t_docs"] = ["Zorbia is a small country; its capital is Plimtown.", "Zorbia pays in glints."]
    ip.run_cell_magic("rag", "build t_zdocs", "t_docs")
    ip.run_cell_magic("rag", "ask t_zdocs --model zmag@1 -k 1 -o t_a", "What is the capital of Zorbia?")
    assert ip.user_ns["t_a"].text.strip() and ip.user_ns["t_a"].model == "zmag@1"
    # status / attach (a fresh handle from disk, as after a kernel restart) / dashboard
    listing = ip.run_line_magic("finetune", "status")._repr_mimebundle_()["text/plain"]
    assert "zmag" in listing and "done" in listing and "zmag@1" in listing
    again = ip.run_line_magic("finetune", "attach zmag")
    assert again is not job and again.run_id == job.run_id and again.model == "zmag@1"
    bundle = again._repr_mimebundle_()
    assert "<svg" in bundle["text/html"] and "zmag@1" in bundle["text/plain"]
    from cellops.widgets.training import TrainingDashboard

    dash = TrainingDashboard(again)
    dash._thread.join(timeout=10)
    assert dash.bar.value == dash.bar.max == 3 and dash.bar.bar_style == "success"
    assert "polyline" in dash.curve.value and "zmag@1" in dash.result.value
    with pytest.raises(UsageError, match="already finished as zmag@1"):
        ip.run_line_magic("finetune", "resume zmag")
    assert "done" in repr(ip.run_line_magic("finetune", "stop zmag"))
