"""%%rag and %rag through a real InteractiveShell (real MiniLM, real SmolLM2 for ask)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib import prompts
from cellops.magics import rag as rag_magic

SHORT_PROMPT = """Sources:
{% for p in passages %}[{{ p.n }}] {{ p.text }}
{% endfor %}
Question: {{ question }}
Answer with [n]:"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "kb"
    d.mkdir()
    (d / "tower.md").write_text("# Eiffel Tower\n\nThe Eiffel Tower in Paris was completed in 1889.\n")
    (d / "moon.txt").write_text("Apollo 11 landed on the Moon in July 1969.")
    (d / "skip.bin").write_bytes(b"\x00\x01")
    return d


def test_build_search_list_show(ip, docs: Path, workspace) -> None:
    ip.user_ns["t_df"] = pd.DataFrame({"id": ["k1"], "text": ["Kiwis are flightless birds from New Zealand."]})
    ip.run_cell_magic("rag", "build kb -o t_v", f"{docs}\nt_df\n# a comment\n")
    v = ip.user_ns["t_v"]
    assert v.ref == "kb@1" and v.counts["files"] == 3 and v.skipped[0][1] == "unsupported file type '.bin'"
    assert v.content["sources"] == [str(docs), "t_df"]
    df = ip.run_line_magic("rag", "search kb which bird cannot fly -k 2")
    assert isinstance(df, pd.DataFrame) and df.iloc[0]["doc_id"] == "k1" and len(df) == 2
    df = ip.run_line_magic("rag", "search kb Apollo Moon --hybrid -k 1 -o t_hits")
    assert df.iloc[0]["source"].endswith("moon.txt") and ip.user_ns["t_hits"][0].score > 0
    # its text form is the hit table: one line per hit with rank, score, source and a snippet
    # (pandas' own form wraps or elides the columns of a 7-column frame)
    title, _, _, row = ip.display_formatter.format(df)[0]["text/plain"].splitlines()
    assert "1 hits for 'Apollo Moon' in kb@1 (hybrid)" == title
    assert row.split()[:3] == ["1", f"{df.iloc[0]['score']:.3f}", df.iloc[0]["source"]]
    assert row.rstrip().endswith("Apollo 11 landed on the Moon in July 1969.")
    assert repr(df) == str(df) == ip.display_formatter.format(df)[0]["text/plain"]  # print(df) too
    edited = df.drop(columns=["text"])  # no longer the hit table: pandas' own form, no recursion
    assert repr(edited) == pd.DataFrame.__repr__(edited) and "doc_id" in repr(edited)
    listing = ip.run_line_magic("rag", "list")._repr_mimebundle_()["text/plain"]
    assert "kb@1" in listing and "brute" in listing
    shown = ip.run_line_magic("rag", "show kb@1")._repr_mimebundle_()["text/plain"]
    assert "skip.bin" in shown and "auto size 128 overlap 16" in shown
    assert "kb@1" in ip.run_line_magic("rag", "history kb@1")._repr_mimebundle_()["text/plain"]
    with pytest.raises(UsageError, match=r"^no saved index named 'nosuch'; %rag list shows"):
        ip.run_line_magic("rag", "history nosuch")


def test_eval_and_map(ip, docs: Path, tmp_path: Path) -> None:
    ip.run_cell_magic("rag", "build kb --chunker token --chunk-size 32 --overlap 4", str(docs))
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"_id": "q1", "text": "When did Apollo 11 land?"}) + "\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(f"q1\t{docs.name}/moon.txt\t1\n")
    ip.user_ns["t_q"] = str(q)
    m = ip.run_line_magic("rag", f"eval kb --queries {q} --qrels {qrels} -k 2 --weighted 0.4 -o t_m")
    assert m["dense/recall@2"] == 1.0 and ip.user_ns["t_m"] is m and m["weighted/weight"] == 0.4
    assert "best: " in m._repr_mimebundle_()["text/plain"]
    a = rag_magic.eval_parser.parse_line(f"kb --queries {q} --rerank qwen-0.5b --rerank-depth 5")
    assert (a.rerank, a.rerank_depth, a.weighted) == ("qwen-0.5b", 5, rag_magic.DENSE_WEIGHT)
    assert rag_magic.build_parser.parse_line("kb --no-stem").no_stem and not rag_magic.build_parser.parse_line("kb").no_stem
    emap = ip.run_line_magic("rag", "map kb --query 'Moon landing' -k 1")
    png = base64.b64decode(emap._repr_mimebundle_()["image/png"])
    assert png.startswith(b"\x89PNG") and emap.hits == 1


def test_bad_input_is_one_line(ip, docs: Path) -> None:
    with pytest.raises(UsageError, match="no index named 'nope'"):
        ip.run_line_magic("rag", "search nope hello")
    with pytest.raises(UsageError, match="needs sources"):
        ip.run_cell_magic("rag", "build kb", "\n# only a comment\n")
    with pytest.raises(UsageError, match="unknown chunker 'fancy'; available: auto, code, markdown, token"):
        ip.run_cell_magic("rag", "build kb --chunker fancy", str(docs))
    with pytest.raises(UsageError, match="--overlap"):
        ip.run_cell_magic("rag", "build kb --chunk-size 16 --overlap 16", str(docs))
    with pytest.raises(UsageError, match="usage: %rag search"):
        ip.run_line_magic("rag", "frobnicate")
    with pytest.raises(UsageError, match="no variable named 'missing_var'"):
        ip.run_cell_magic("rag", "ask kb", "What about {missing_var}?")
    assert "Loaders:" in rag_magic.HELP and "%%rag ask" in rag_magic.HELP


@pytest.mark.slow
def test_ask_streams_cites_and_records(ip, docs: Path, workspace, capsys) -> None:
    ip.run_cell_magic("rag", "build kb", str(docs))
    prompts.save("short-rag", SHORT_PROMPT, params={"max_tokens": 24})
    ip.user_ns["t_thing"] = "the Eiffel Tower"
    ip.run_cell_magic("rag", "ask kb -k 2 --prompt short-rag@1 -o t_a", "When was {t_thing} completed?")
    a = ip.user_ns["t_a"]
    assert a.question == "When was the Eiffel Tower completed?" and a.prompt == "short-rag@1"
    assert a.text and a.text in capsys.readouterr().out  # streamed
    assert a.passages[0].source.endswith("tower.md") and len(a.passages) == 2
    for c in a.citations:  # every citation maps to a retrieved passage's source and text
        assert c.source == a.passages[c.n - 1].source and c.text == a.passages[c.n - 1].text
    rec = workspace.get_run(a.run_id)["record"]
    assert [s["name"] for s in rec["trace"]] == ["retrieve", "embed query", "render", "load_model", "generate"]
    assert rec["index"] == "kb@1" and rec["prompt"] == "short-rag@1" and rec["output"] == a.text
    assert "[1] # Eiffel Tower\n\nThe Eiffel Tower in Paris" in rec["messages"][-1]["content"]
    bundle = a._repr_mimebundle_()
    assert "tower.md" in bundle["text/plain"] and "<details>" in bundle["text/html"]


def test_build_a_corpus_of_web_text_with_line_separators(ip, tmp_path: Path) -> None:
    # MS MARCO-like passages: U+2028, U+0085, vertical tab, form feed, group separators inside
    # the texts; line 4 really is broken and is reported, the rest is indexed
    passages = ["The Great Barrier Reef\u2028lies off Queensland, Australia.",
                "Mount Fuji\u0085is the highest mountain in Japan.",
                "Photosynthesis\x0bturns light into chemical energy\x0cin plants.",
                "The Nile\x1cflows north\x1dthrough Egypt\x1einto the Mediterranean."]
    lines = [json.dumps({"_id": f"p{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(passages)]
    lines = [ln.replace("\\u000b", "\x0b").replace("\\f", "\x0c").replace("\\u001c", "\x1c")
             .replace("\\u001d", "\x1d").replace("\\u001e", "\x1e") for ln in lines]
    lines.insert(3, '{"_id": "bad", "text": "cut off')
    corpus = tmp_path / "marco.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ip.run_cell_magic("rag", "build marco -o t_v", str(corpus))
    v = ip.user_ns["t_v"]
    assert v.counts["documents"] == 4 and v.counts["files"] == 1
    assert [s for s, _ in v.skipped] == ["marco.jsonl line 4"] and "not valid JSON" in v.skipped[0][1]
    assert "marco.jsonl line 4" in v._repr_mimebundle_()["text/plain"]
    df = ip.run_line_magic("rag", "search marco which river flows through Egypt -k 1")
    assert df.iloc[0]["doc_id"] == "p3" and "\x1d" in df.iloc[0]["text"]
    df = ip.run_line_magic("rag", "search marco coral reef in Australia -k 1")
    assert df.iloc[0]["doc_id"] == "p0" and "\u2028" in df.iloc[0]["text"]


def test_live_kernel_ask_waterfall_fills_in(ip, docs: Path, live_views) -> None:
    """%%rag ask in a live kernel: retrieval shows in the live waterfall before the answer is
    generated; on success the view closes and the answer keeps the static waterfall."""
    ip.run_cell_magic("rag", "build kb", str(docs))
    prompts.save("short-rag", SHORT_PROMPT, params={"max_tokens": 8})
    ip.run_cell_magic("rag", "ask kb -k 1 --prompt short-rag@1 -o t_a", "When was the Eiffel Tower completed?")
    a, running = ip.user_ns["t_a"], live_views.running()
    root = f"rag ask {a.index}"
    assert [root, "retrieve"] in running, live_views.states
    assert running.index([root, "retrieve"]) < running.index([root, "retrieve", "embed query", "render",
                                                               "load_model", "generate"]), live_views.states
    assert live_views.states[-1][1] is False and live_views.views[-1].widget.comm is None
    assert live_views.displayed(live_views.ids[-1]) and "wf-name" in a._repr_mimebundle_()["text/html"]
