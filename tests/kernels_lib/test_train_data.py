"""Fine-tuning input, before anything launches: config, data formats and bad rows, the labels mask
with the real SmolLM2 tokenizer and chat template, the PII scan with a real guard policy, the
memory plan / ZeRO choice, and bad-input errors that leave no run behind."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
from testsupport import ZORBIA_QA

from cellops.kernels_lib.errors import GuardBlocked, InvalidInputError, JobError, NotFoundError
from cellops.kernels_lib.train import FinetuneConfig, launch
from cellops.kernels_lib.train import data as D
from cellops.kernels_lib.train.plan import GiB, ModelShape, deepspeed_config, estimate, make_plan
from cellops.kernels_lib.train.prepare import prepare, resolve_base, tokenizer_for
from cellops.kernels_lib.train.tokenize import IGNORE, encode, encode_all


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "system", "content": "Answer briefly."},
                         {"role": "user", "content": q}, {"role": "assistant", "content": a}]}


# -- config -----------------------------------------------------------------------------------
def test_config_from_dict_coerces_and_rejects() -> None:
    cfg = FinetuneConfig.from_dict({"name": "m", "max-steps": "5", "lr": "1e-3", "offload": "yes", "zero": 2})
    assert (cfg.max_steps, cfg.lr, cfg.offload, cfg.zero) == (5, 1e-3, True, "2")
    assert FinetuneConfig(method="full").learning_rate == 2e-5 and FinetuneConfig().learning_rate == 2e-4
    with pytest.raises(InvalidInputError, match="unknown finetune setting.*epoch\\b.*valid:"):
        FinetuneConfig.from_dict({"epoch": 1})
    with pytest.raises(InvalidInputError, match="batch must be int"):
        FinetuneConfig.from_dict({"batch": "four"})
    with pytest.raises(InvalidInputError, match="zero must be one of"):
        FinetuneConfig(zero="4")
    with pytest.raises(InvalidInputError, match="invalid name"):
        FinetuneConfig(name="has space")
    with pytest.raises(InvalidInputError, match="procs is processes per node, at most 256"):
        FinetuneConfig.from_dict({"procs": 100_000})  # e.g. an edited run.json: no fork bomb
    with pytest.raises(InvalidInputError, match="memory_gb is the budget per process"):
        FinetuneConfig(memory_gb=1e9)
    assert FinetuneConfig(procs=256, memory_gb=512).procs == 256


# -- data formats -----------------------------------------------------------------------------
def test_formats_are_detected_and_normalized(tmp_path: Path) -> None:
    ds = D.load(write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Add", "input": "2+2", "output": "4"}]))
    assert ds.format == "alpaca"
    assert ds.rows[0].messages == [{"role": "user", "content": "Add\n\n2+2"}, {"role": "assistant", "content": "4"}]
    pc = tmp_path / "p.csv"
    pc.write_text('prompt,completion\n"Hi, there",Hello\nBye,Goodbye\n')
    ds = D.load(pc)
    assert ds.format == "completion" and [r.line for r in ds.rows] == [2, 3]
    assert ds.rows[0].messages[0]["content"] == "Hi, there"
    df = pd.DataFrame([chat(q, a) for q, a in ZORBIA_QA])
    ds = D.load(df)
    assert ds.format == "chat" and len(ds.rows) == 4 and ds.rows[3].messages[-1]["content"] == "The blue otter."
    assert D.load([chat(q, a) for q, a in ZORBIA_QA]).hash == ds.hash  # same conversations, same hash
    assert D.load(df.iloc[:3]).hash != ds.hash


def test_bad_rows_are_all_reported_with_line_numbers(tmp_path: Path) -> None:
    rows = [chat(*ZORBIA_QA[0]), "{not json", chat(*ZORBIA_QA[1])]
    with pytest.raises(InvalidInputError, match="line 2: not valid JSON"):
        D.load(write_jsonl(tmp_path / "a.jsonl", rows))
    rows = [chat(*ZORBIA_QA[0]),
            {"messages": [{"role": "user", "content": "only a question"}]},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "   "}]},
            chat(*ZORBIA_QA[1]),
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                          {"role": "user", "content": "dangling"}]}]
    with pytest.raises(InvalidInputError) as e:
        D.load(write_jsonl(tmp_path / "b.jsonl", rows))
    msg = str(e.value)
    assert msg.startswith("3 invalid row(s)") and "\n" not in msg
    assert "line 2: no assistant message" in msg and "line 3: message 1 (assistant) has no text" in msg
    assert "line 5: the last message must be the assistant's" in msg and "line 4" not in msg
    with pytest.raises(InvalidInputError, match=r"line 2: 'output' is missing"):
        D.load([{"instruction": "a", "output": "b"}, {"instruction": "c"}])
    with pytest.raises(InvalidInputError, match="cannot tell the format.*keys: question"):
        D.load([{"question": "x"}])
    with pytest.raises(InvalidInputError, match="is empty"):
        D.load(write_jsonl(tmp_path / "empty.jsonl", []))
    with pytest.raises(NotFoundError, match="data file not found"):
        D.load(tmp_path / "missing.jsonl")


def test_split_is_seeded_and_keeps_every_row() -> None:
    ds = D.load([chat(f"q{i}", f"a{i}") for i in range(20)])
    tr, ev = ds.split(0.1, seed=1)
    assert len(ev) == 2 and len(tr) == 18 and {r.line for r in tr + ev} == set(range(1, 21))
    assert [r.line for r in ds.split(0.1, seed=1)[1]] == [r.line for r in ev]
    with pytest.raises(InvalidInputError, match="needs at least 2 rows"):
        D.load([chat("q", "a")]).split(0.1, 0)


# -- labels mask (real tokenizer + chat template) -----------------------------------------------
def test_loss_is_on_assistant_tokens_only(linked_base: Path) -> None:
    tok = tokenizer_for(linked_base)
    msgs = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Capital of Zorbia?"},
            {"role": "assistant", "content": "Plimtown."}, {"role": "user", "content": "And its river?"},
            {"role": "assistant", "content": "The Tamsel."}]
    ex = encode(tok, D.Row(1, msgs), max_len=512)
    assert len(ex.input_ids) == len(ex.labels) and not ex.truncated
    # the labelled tokens, grouped into runs, are exactly the two answers + their end-of-turn
    runs, cur = [], []
    for i, lab in zip(ex.input_ids, ex.labels, strict=True):
        if lab == IGNORE:
            if cur:
                runs.append(cur)
            cur = []
        else:
            assert lab == i
            cur.append(i)
    runs.append(cur) if cur else None
    assert [tok.decode(r) for r in runs] == ["Plimtown.<|im_end|>\n", "The Tamsel.<|im_end|>\n"]
    masked = tok.decode([i for i, lab in zip(ex.input_ids, ex.labels, strict=True) if lab == IGNORE])
    assert "Capital of Zorbia?" in masked and "Be terse." in masked and "Plimtown" not in masked
    assert masked.count("<|im_start|>assistant") == 2  # the role header is prompt, not answer
    # an answer pushed past max_len cannot train anything: reported, not dropped
    with pytest.raises(InvalidInputError, match=r"1 row\(s\) have no answer token within --max-len 12: line 7"):
        encode_all(tok, [D.Row(7, msgs)], max_len=12)
    _, cut = encode_all(tok, [D.Row(3, msgs)], max_len=30)
    assert cut == [3]


# -- PII scan with the real guard policy --------------------------------------------------------
def test_pii_is_redacted_or_blocks_per_policy(tmp_path: Path, workspace, linked_base: Path) -> None:
    from cellops.kernels_lib import guard

    rows = [chat(*ZORBIA_QA[0]), chat("Email me at jane.doe@example.com please", "Sure."), chat(*ZORBIA_QA[1])]
    pol = guard.load("default", workspace)
    ds = D.scan_pii(D.load(rows), pol)
    assert "jane.doe@example.com" not in json.dumps([r.messages for r in ds.rows])
    assert any("redacted PII in lines 2" in n for n in ds.notes)
    blocking = guard.save("nopii", "input:\n  - check: pii\n    action: block\n", workspace)
    with pytest.raises(GuardBlocked, match=r"blocked 1 training row\(s\): line 2 \(user\)"):
        D.scan_pii(D.load(rows), blocking)
    # through prepare(): the active policy's redaction reaches the tokenized files
    guard.on("default", workspace)
    run_dir = tmp_path / "run"
    # memory_gb: nothing trains here, so the plan's fit check must not depend on the RAM free now
    spec = prepare(FinetuneConfig(name="p", data=rows, eval_split=0, memory_gb=16), workspace, run_dir,
                   guard.active_policy(workspace))
    assert "jane.doe" not in (run_dir / "data" / "train.jsonl").read_text()
    assert any("redacted" in n for n in spec["plan"]["notes"])


# -- plan: memory and the ZeRO stage -----------------------------------------------------------
def test_zero_auto_picks_from_world_size_and_fit(linked_base: Path) -> None:
    shape = ModelShape.read(linked_base)
    assert 130e6 < shape.params < 140e6 and shape.layers == 30
    one = make_plan(FinetuneConfig(), shape, "cpu", 16 * GiB)
    assert one.stage == 0 and "1 process" in one.reason and one.world == 1
    two = make_plan(FinetuneConfig(procs=2), shape, "cpu", 8 * GiB)
    assert two.stage == 0 and "2 processes and a full replica fits" in two.reason
    # full fine-tuning of 8 ranks on a tight budget: the replica does not fit, sharding does
    full = FinetuneConfig(method="full", procs=8, batch=1, max_len=128)
    need0 = make_plan(full, shape, "cpu", 64 * GiB).need_gb
    tight = make_plan(full, shape, "cpu", (need0 - 0.5) * GiB)
    assert tight.stage in (1, 2, 3) and f"ZeRO-{tight.stage} (auto)" in tight.reason and "over" in tight.reason
    assert tight.need_gb < need0
    with pytest.raises(JobError, match="cannot fit: it needs ~.* GiB per process .*weights .*activations"):
        make_plan(FinetuneConfig(batch=64, max_len=4096), shape, "cpu", 4 * GiB)
    explicit = make_plan(FinetuneConfig(zero="2"), shape, "cpu", 16 * GiB)
    assert explicit.stage == 2 and any("--zero auto would use 0" in n for n in explicit.notes)
    ds = deepspeed_config(make_plan(FinetuneConfig(zero="3", procs=2), shape, "cpu", 16 * GiB), FinetuneConfig())
    assert ds["zero_optimization"]["stage"] == 3 and ds["train_micro_batch_size_per_gpu"] == "auto"
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert any("--offload ignored" in n for n in make_plan(FinetuneConfig(offload=True), shape, "cpu", 16 * GiB).notes)
    # full DPO holds a frozen reference copy; ORPO (reference-free) and LoRA DPO (adapter off) do not
    weights = {k: estimate(FinetuneConfig(**kw), shape, 0, 1, 4, False).weights for k, kw in (
        ("sft", {"method": "full"}), ("dpo", {"method": "dpo", "adapter": "none"}),
        ("orpo", {"method": "orpo", "adapter": "none"}), ("dpo_lora", {"method": "dpo"}))}
    assert weights["dpo"] == 2 * weights["sft"] and weights["orpo"] == weights["sft"] == weights["dpo_lora"]


# -- bad input: one line, nothing started, nothing left behind ------------------------------------
def _no_run_left(workspace) -> None:
    runs = workspace.artifacts / "finetune"
    assert not runs.exists() or not any(runs.rglob("run.json"))
    assert workspace.list_runs("finetune") == []


def test_bad_input_fails_before_launch(tmp_path: Path, workspace, linked_base: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [chat(q, a) for q, a in ZORBIA_QA])
    cases = [
        (dict(base="hf:/nowhere/model"), NotFoundError, "unknown base model 'hf:/nowhere/model'"),
        (dict(base="nosuch@3"), NotFoundError, "unknown base model 'nosuch@3'"),
        (dict(base="openai:http://x#m"), NotFoundError, "cannot fine-tune"),
        (dict(data=str(tmp_path / "missing.jsonl")), NotFoundError, "data file not found"),
        (dict(data=str(write_jsonl(tmp_path / "e.jsonl", []))), InvalidInputError, "is empty"),
        (dict(batch=256, max_len=4096, memory_gb=2), JobError, "cannot fit"),
        (dict(name=""), InvalidInputError, "needs a name"),
    ]
    for overrides, err, text in cases:
        cfg = {"name": "bad", "data": str(data)} | overrides
        with pytest.raises(err, match=text) as e:
            launch(cfg, workspace)
        assert "\n" not in str(e.value)
        _no_run_left(workspace)
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(JobError, match=f"port {port} is already in use.*--port 0"):
            launch({"name": "bad", "data": str(data), "port": port}, workspace)
    _no_run_left(workspace)
    assert resolve_base("default", workspace)[0] == "default"


# -- the event file: torn lines, resumed steps ------------------------------------------------
def test_event_tail_skips_partial_lines_and_summary_folds_resumes(tmp_path: Path) -> None:
    from cellops.kernels_lib.train import events

    path = tmp_path / "events.jsonl"
    events.append(path, "start", step=0, max_steps=4)
    tail = events.Tail(path)
    assert [e["kind"] for e in tail.read()] == ["start"]
    with open(path, "a") as f:
        f.write('{"kind": "log", "step": 1, "lo')  # a writer mid-line: not yet an event
    assert tail.read() == []
    with open(path, "a") as f:
        f.write('ss": 2.0}\n')
    assert tail.read() == [{"kind": "log", "step": 1, "loss": 2.0}]
    for step, loss in [(2, 1.8), (3, 1.7)]:
        events.append(path, "log", step=step, loss=loss)
    events.append(path, "resume", step=2, max_steps=4)  # killed after 3, resumed from checkpoint 2
    for step, loss in [(3, 1.6), (4, 1.5)]:
        events.append(path, "log", step=step, loss=loss, tokens_per_s=10.0)
    events.append(path, "eval", step=0, eval_loss=2.5, phase="before")
    events.append(path, "eval", step=4, eval_loss=1.9, phase="after")
    m = events.summarize(events.read_all(path))
    assert m["losses"] == [(1, 2.0), (2, 1.8), (3, 1.6), (4, 1.5)]
    assert (m["step"], m["max_steps"], m["eval_loss_before"], m["eval_loss_after"]) == (4, 4, 2.5, 1.9)
