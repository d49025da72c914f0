"""%%dataset / %dataset through a real InteractiveShell, and NAME@V in the other magics."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError


def test_cell_with_json_lines_lists_bad_rows_and_saves_once(ip) -> None:
    body = ('{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}\n'
            '{"prompt": "No pair", "chosen": "x"}\n'
            '{"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."}\n')
    out = ip.run_cell_magic("dataset", "pairs -o t_pairs --description 'two good pairs'", body)
    text = out._repr_mimebundle_()["text/plain"]
    assert text.startswith("saved new version pairs@1") and "2 kept, 1 bad" in text
    assert "line 2" in text and "'rejected' is missing" in text
    assert ip.user_ns["t_pairs"].format == "preference"
    again = ip.run_cell_magic("dataset", "pairs", body)
    assert again._repr_mimebundle_()["text/plain"].startswith("unchanged, still pairs@1")


def test_cell_with_sources_and_splits(ip, tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    ip.user_ns["t_df"] = pd.DataFrame([{"prompt": "c", "completion": "d"}])
    ip.run_cell_magic("dataset", "qa", f"train: {tmp_path}/train.jsonl\ntest: t_df\n")
    assert "qa@1  " in ip.run_line_magic("dataset", "list").text
    assert list(ip.run_line_magic("dataset", "show qa@1:test")["prompt"]) == ["c"]
    card = ip.run_line_magic("dataset", "card qa")._repr_mimebundle_()["text/plain"]
    assert "train 1, test 1" in card


def test_bad_input_is_one_usage_line(ip) -> None:
    with pytest.raises(UsageError, match="needs rows"):
        ip.run_cell_magic("dataset", "x", "\n# nothing\n")
    with pytest.raises(UsageError, match="no file or dataset named 'ghost'"):
        ip.run_cell_magic("dataset", "x", "ghost\n")
    with pytest.raises(UsageError, match="usage: %dataset"):
        ip.run_line_magic("dataset", "frobnicate")
    with pytest.raises(UsageError, match="no dataset named 'ghost'"):
        ip.run_line_magic("dataset", "card ghost")


def test_prompt_test_and_compare_take_a_dataset_of_cases(ip) -> None:
    ip.run_cell_magic("dataset", "cases", json.dumps(
        {"vars": {"word": "cat"}, "assert": [{"type": "max-length", "value": 400}]}) + "\n")
    ip.run_cell_magic("prompt", "echo --no-run --max-tokens 8", "Repeat the word: {{ word }}")
    report = ip.run_line_magic("prompt", "test echo --on cases@1")
    assert report.ok and len(report.results) == 1 and report.grid.cases[0].where == "row 1 of dataset cases@1"
    ip.run_line_magic("prompt", "compare echo@1 --on cases@1 --max-tokens 8 -o t_grid")
    assert len(ip.user_ns["t_grid"]) == 1
    with pytest.raises(UsageError, match="no notebook variable, file or dataset named 'cazes'"):
        ip.run_line_magic("prompt", "test echo --on cazes")


def test_finetune_data_can_be_a_dataset_ref(ip, workspace) -> None:
    from cellops.kernels_lib.train import data as train_data
    from cellops.magics import finetune as F
    from cellops.magics.context import MagicContext

    ip.run_cell_magic("dataset", "sft", '{"prompt": "Capital of Zorbia?", "completion": "Plimtown."}\n')
    cfg, _ = F.build_config(MagicContext(ip, ip.magics_manager.registry["Cellops"]), "m --data sft@1", "")
    ds = train_data.load(cfg.data, cfg.format, workspace)  # what prepare() does first
    assert ds.source == "dataset sft@1" and ds.rows[0].messages[-1]["content"] == "Plimtown."


def test_synth_and_perturb_bad_input_is_one_usage_line(ip, tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UsageError, match="the seed set .*empty.jsonl has no tasks"):
        ip.run_line_magic("synth", f"more --from {tmp_path}/empty.jsonl --n 2")
    with pytest.raises(UsageError, match="the following arguments are required: --from"):
        ip.run_line_magic("synth", "more --n 2")
    ip.run_cell_magic("prompt", "echo --no-run", "Repeat: {{ word }}")
    ip.user_ns["t_cases"] = [{"vars": {"word": "cat"}, "assert": [{"type": "contains", "value": "cat"}]}]
    with pytest.raises(UsageError, match="unknown perturbation kind 'typoes'; valid: typos, case, whitespace"):
        ip.run_line_magic("prompt", "perturb echo --on t_cases --kinds typoes")


def test_a_corrupt_version_or_card_and_a_missing_file_are_one_usage_line(ip) -> None:
    from cellops.kernels_lib import datasets as ds

    ip.run_cell_magic("dataset", "d1", '{"text": "one"}\n{"text": "two"}\n')
    with pytest.raises(UsageError, match=r"^file not found: nosuchfile\.jsonl$"):
        ip.run_cell_magic("dataset", "d2", "nosuchfile.jsonl\n")
    with pytest.raises(UsageError, match=r"^file not found: a_missing\.jsonl$"):
        ip.run_cell_magic("dataset", "d2", "train: a_missing.jsonl\ntest: d1\n")
    folder = ds.get("d1").path
    with (folder / "rows.jsonl").open("a") as f:
        f.write('{"text": broken\n')
    with pytest.raises(UsageError, match=r"^dataset d1@1 is corrupt \("):
        ip.run_line_magic("dataset", "show d1")
    (folder / "card.json").write_text("{bad")
    with pytest.raises(UsageError, match=r"^dataset d1@1 has no readable card .*; save it again"):
        ip.run_line_magic("dataset", "card d1")


def test_history_of_an_unknown_name_says_so(ip) -> None:
    ip.run_cell_magic("dataset", "d1", '{"text": "one"}\n')
    assert "d1@1" in ip.run_line_magic("dataset", "history d1").text
    with pytest.raises(UsageError, match=r"^no saved dataset named 'nosuch'; %dataset list shows"):
        ip.run_line_magic("dataset", "history nosuch")
