"""`%%rag build NAME --recall R` and the ScaNN query-time options of `%rag search` / `%%rag ask`,
through a real InteractiveShell, real MiniLM and a real ScaNN index (the exact-search threshold
is lowered so that a small corpus gets a tree)."""

from __future__ import annotations

import itertools

import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib.rag import ann

ANIMALS = ["otters", "herons", "badgers", "lynxes", "beavers", "falcons", "voles", "newts"]
PLACES = ["rivers", "marshes", "pine forests", "sea cliffs", "meadows"]
FOODS = ["fish", "beetles", "roots", "berries"]


def test_build_for_a_recall_then_search_with_settings(ip, workspace, monkeypatch) -> None:
    monkeypatch.setattr(ann, "BRUTE_MAX", 50)
    ip.user_ns["t_facts"] = [f"Wild {a} live near {p} and mostly eat {f}."
                             for a, p, f in itertools.product(ANIMALS, PLACES, FOODS)]  # 160
    ip.run_cell_magic("rag", "build zoo --recall 0.98 --chunker token -o t_v", "t_facts")
    v = ip.user_ns["t_v"]
    a = v.content["ann"]
    assert a["kind"] == "scann" and a["target_recall"] == 0.98 and a["measured_recall"] >= 0.98
    assert f"{a['leaves_to_search']} of {a['num_leaves']} leaves" in repr(v) and "target 0.98" in repr(v)
    again = ip.run_cell_magic("rag", "build zoo --recall 0.98 --chunker token", "t_facts")
    assert not again.created  # same corpus, same target: nothing to do
    other = ip.run_cell_magic("rag", "build zoo --recall 0.9 --chunker token", "t_facts")
    assert other.created and other.embedded == 0 and other.content["ann"]["target_recall"] == 0.9
    df = ip.run_line_magic("rag", f"search zoo@1 badgers in meadows -k 3 --leaves {a['num_leaves']} --reorder 200")
    assert df.iloc[0]["text"].startswith("Wild badgers live near meadows")
    with pytest.raises(UsageError, match=f"--leaves must be between 1 and {a['num_leaves']}"):
        ip.run_line_magic("rag", "search zoo badgers --leaves 100000")
    with pytest.raises(UsageError, match="--reorder must be at least 1"):  # ask passes them to retrieval
        ip.run_cell_magic("rag", "ask zoo --reorder 0", "Where do badgers live?")
    with pytest.raises(UsageError, match=r"--recall must be in \(0, 1\]"):
        ip.run_cell_magic("rag", "build zoo --recall 2", "t_facts")
