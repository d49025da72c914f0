"""JSON Lines split on \\n only: texts holding characters that str.splitlines() breaks at (legal
inside JSON strings, common in web text) load everywhere; a broken row is named by its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.jsonl import read_jsonl, read_rows
from cellops.kernels_lib.prompts import cases
from cellops.kernels_lib.train import data as train_data

# every character str.splitlines() treats as a line break, except \n itself
BREAKERS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"]


def raw_line(obj: dict) -> str:
    """JSON as a lenient writer puts it: non-ASCII and control characters left unescaped."""
    text = json.dumps(obj, ensure_ascii=False)
    for ch in ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"):
        text = text.replace(json.dumps(ch)[1:-1], ch)
    return text


def test_rows_with_line_breaking_characters_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "web.jsonl"
    rows = [{"id": i, "text": f"before{ch}after {i}"} for i, ch in enumerate(BREAKERS)]
    path.write_bytes(("\r\n".join(raw_line(r) for r in rows) + "\r\n").encode())
    assert len(path.read_bytes().decode().splitlines()) > len(rows)  # what tripped the old readers
    got = list(read_jsonl(path))
    assert [n for n, _ in got] == list(range(1, len(rows) + 1))
    assert [r for _, r in got] == rows


def test_a_broken_row_is_reported_and_the_rest_is_used(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"text": "one\xe2\x80\xa8two"}\n\n{"text": broken\n\xff\xfe\n{"text": "last"}\n')
    rows, bad = read_rows(path)
    assert [n for n, _ in rows] == [1, 5] and rows[1][1] == {"text": "last"}
    assert [n for n, _ in bad.lines] == [3, 4]
    assert "not valid JSON" in bad.lines[0][1] and "not UTF-8" in bad.lines[1][1]
    assert bad.summary().startswith("mixed.jsonl: skipped 2 bad row(s): line 3: not valid JSON")
    with pytest.raises(InvalidInputError, match=r"mixed.jsonl line 3 is not valid JSON"):
        list(read_jsonl(path))  # strict callers (evaluation sets) get one line naming the row


def test_finetuning_data_and_prompt_cases_keep_such_texts(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    convs = [{"messages": [{"role": "user", "content": f"Q{ch}{i}"},
                           {"role": "assistant", "content": f"A{ch}{i}"}]} for i, ch in enumerate(BREAKERS)]
    path.write_text("\n".join(raw_line(c) for c in convs) + "\n", encoding="utf-8")
    ds = train_data.load(path)
    assert [r.line for r in ds.rows] == list(range(1, len(BREAKERS) + 1))
    assert [r.messages[-1]["content"] for r in ds.rows] == [f"A{ch}{i}" for i, ch in enumerate(BREAKERS)]
    cpath = tmp_path / "cases.jsonl"
    cpath.write_text("\n".join(raw_line({"vars": {"q": f"x{ch}y"}}) for ch in BREAKERS) + "\n", encoding="utf-8")
    name, got = cases._read_file(cpath)
    assert [label for label, _ in got][-1] == f"line {len(BREAKERS)} of cases.jsonl"
    assert [c["vars"]["q"] for _, c in got] == [f"x{ch}y" for ch in BREAKERS]
