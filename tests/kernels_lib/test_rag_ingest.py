"""RAG ingestion: loaders for every supported type, chunkers, incremental and crash-safe builds
(real MiniLM embedder, real bm25s)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cellops.kernels_lib import rag
from cellops.kernels_lib.errors import InvalidInputError, WorkspaceError
from cellops.kernels_lib.rag import ingest, loaders, store
from cellops.kernels_lib.rag.chunkers import chunkers


def make_pdf(path: Path, pages: list[str]) -> None:
    """A minimal valid PDF (Helvetica text, one page per string) with a correct xref table."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        page_no, content_no = len(objs) + 1, len(objs) + 2
        kids.append(f"{page_no} 0 R")
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_no} 0 R"
                    f" /Resources << /Font << /F1 {len(pages) * 2 + 3} 0 R >> >> >>")
        objs.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    objs.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{o}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "guide.md").write_text("# Guide\n\nIntro text here.\n\n## Install\n\nRun pip install cellops.\n"
                                "\n```\n# not a heading\n```\n\n# Usage\n\nLoad the extension first.\n")
    (d / "notes.txt").write_text("The Eiffel Tower was completed in 1889 for the World's Fair.")
    (d / "ref.rst").write_text("Reference\n=========\n\nThe API returns versions.")
    (d / "page.html").write_text("<html><head><title>x</title><style>p{}</style></head><body>"
                                 "<h1>Volcanoes</h1><p>Mount Etna is in Sicily.</p>"
                                 "<script>var hidden = 1;</script></body></html>")
    (d / "nb.ipynb").write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["# Notebook\n", "Penguins live in Antarctica."]},
        {"cell_type": "code", "source": "print('hi')"}], "metadata": {}, "nbformat": 4,
        "nbformat_minor": 5}))
    (d / "code.py").write_text('"""Mod."""\n\n\ndef area(r):\n    return 3.14 * r * r\n\n\n'
                               "@decorator\nclass Shape:\n    pass\n")
    (d / "rows.jsonl").write_text('{"_id": "d1", "title": "Tea", "text": "Green tea comes from China."}\n'
                                  '{"id": "d2", "contexts": ["Coffee is grown", "in Brazil."]}\n')
    (d / "list.json").write_text(json.dumps([{"id": "j1", "content": "Rust is a systems language."}]))
    (d / "table.csv").write_text("id,text\nc1,Saturn has rings.\nc2,Mars is red.\n")
    make_pdf(d / "paper.pdf", ["Quantum dots emit light.", "Second page about lasers."])
    (d / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (d / "broken.json").write_text("{not json")
    return d


def test_every_loader(corpus: Path) -> None:
    items, skipped = loaders.expand([str(corpus)], corpus.parent)
    docs, bad = {}, {}
    for p in items:
        try:
            sf = loaders.load_file(p, corpus.parent)
        except InvalidInputError as e:
            bad[p.name] = str(e)
            continue
        docs[p.name] = sf.documents
    assert skipped == [] and set(bad) == {"image.png", "broken.json"}
    assert "unsupported file type '.png'" in bad["image.png"] and "invalid JSON" in bad["broken.json"]
    html = docs["page.html"][0].text
    assert "# Volcanoes" in html and "Mount Etna is in Sicily." in html and "hidden" not in html
    assert [d.meta["page"] for d in docs["paper.pdf"]] == [1, 2]
    assert "Quantum dots emit light." in docs["paper.pdf"][0].text
    assert "Penguins" in docs["nb.ipynb"][0].text and "```python\nprint('hi')" in docs["nb.ipynb"][0].text
    rows = {d.doc_id: d.text for d in docs["rows.jsonl"]}
    assert rows == {"d1": "Tea\nGreen tea comes from China.", "d2": "Coffee is grown\nin Brazil."}
    assert {d.doc_id for d in docs["table.csv"]} == {"c1", "c2"}
    assert docs["list.json"][0].doc_id == "j1" and docs["code.py"][0].kind == "code"
    assert docs["guide.md"][0].source == "docs/guide.md"


def test_globs_missing_and_objects(corpus: Path) -> None:
    items, skipped = loaders.expand(["docs/*.md", "docs/nothing*.txt", "gone.txt"], corpus.parent)
    assert [p.name for p in items] == ["guide.md"]
    assert skipped == [("docs/nothing*.txt", "glob matched no files"), ("gone.txt", "not found")]
    import pandas as pd

    sf = loaders.load_object("df", pd.DataFrame({"id": ["a", "b"], "text": ["x y", "z"]}))
    assert [(d.source, d.doc_id) for d in sf.documents] == [("df[0]", "a"), ("df[1]", "b")]
    with pytest.raises(InvalidInputError, match="use a path, a DataFrame or a list"):
        loaders.load_object("n", 42)


def test_token_chunker_windows_and_offsets() -> None:
    text = " ".join(f"w{i}" for i in range(30))
    spans = chunkers.get("token")(text, "text", 10, 3)
    words = [text[s.start:s.end].split() for s in spans]
    assert words[0] == [f"w{i}" for i in range(10)] and words[1][0] == "w7"  # 3 words shared
    assert words[-1][-1] == "w29" and all(len(w) <= 10 for w in words)
    with pytest.raises(InvalidInputError, match="--overlap"):
        ingest.check_sizes(10, 10)


def test_markdown_and_code_chunkers(corpus: Path) -> None:
    md = (corpus / "guide.md").read_text()
    spans = chunkers.get("markdown")(md, "md", 200, 0)
    assert [s.heading for s in spans] == ["Guide", "Usage"]  # Install merged under Guide
    assert md[spans[0].start:spans[0].end].startswith("# Guide") and "# not a heading" in md[spans[0].start:spans[0].end]
    small = chunkers.get("markdown")(md, "md", 8, 2)
    assert {s.heading for s in small} == {"Guide", "Guide > Install", "Usage"}
    code = (corpus / "code.py").read_text()
    cspans = chunkers.get("code")(code, "code", 6, 0)
    texts = [code[s.start:s.end] for s in cspans]
    assert any(t.startswith("def area") for t in texts) and any(t.startswith("@decorator\nclass Shape") for t in texts)


def test_build_versions_incremental_and_skips(corpus: Path, workspace) -> None:
    v1 = rag.build("kb", [str(corpus), "missing.txt"], progress=False)
    assert v1.ref == "kb@1" and v1.created and v1.embedded == v1.counts["chunks"] > 10
    skipped = dict(v1.skipped)
    assert set(skipped) == {"missing.txt", "docs/image.png", "docs/broken.json"}
    assert skipped["missing.txt"] == "not found" and skipped["docs/broken.json"].startswith("invalid JSON")
    c = v1.content
    assert c["embedder"] == "default" and c["chunker"] == "auto" and c["ann"]["kind"] == "brute"
    assert c["counts"]["files"] == 10 and len(c["corpus_hash"]) == 64
    same = rag.build("kb", [str(corpus), "missing.txt"], progress=False)
    assert not same.created and same.ref == "kb@1" and same.embedded == 0
    (corpus / "notes.txt").write_text("The Colosseum is in Rome.")
    (corpus / "table.csv").unlink()
    v2 = rag.build("kb", [str(corpus)], progress=False)
    assert v2.ref == "kb@2" and v2.embedded == 1 and v2.reused == v2.counts["chunks"] - 1
    idx = store.open_index("kb", workspace)
    assert not any(ch.source == "docs/table.csv" for ch in idx.chunks)
    hit = rag.search("kb", "Where is the Colosseum?", k=1)[0]
    assert hit.source == "docs/notes.txt" and "Colosseum" in hit.text and 0 < hit.score <= 1
    # the reused vectors are the very vectors of v1 (not re-embedded)
    old = store.open_index("kb@1", workspace)
    row_old = next(ch.id for ch in old.chunks if ch.source == "docs/ref.rst")
    row_new = next(ch.id for ch in idx.chunks if ch.source == "docs/ref.rst")
    assert np.array_equal(old.dense.vectors[row_old], idx.dense.vectors[row_new])
    with pytest.raises(InvalidInputError, match="nothing to index"):
        rag.build("empty", ["nope/*.md"], progress=False)


def test_killed_build_keeps_previous_and_next_recovers(corpus: Path, workspace, monkeypatch) -> None:
    rag.build("kb", [str(corpus / "notes.txt")], progress=False)
    many = corpus / "many.txt"
    many.write_text("\n".join(f"Sentence number {i} about topic {i % 7}." for i in range(200)))
    monkeypatch.setattr(ingest, "GROUP", 8)
    real = np.save
    calls = {"n": 0}

    def dying_save(path, arr, *a, **kw):  # the process dies after two checkpointed groups
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return real(path, arr, *a, **kw)

    monkeypatch.setattr(ingest.np, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        rag.build("kb", [str(corpus / "notes.txt"), str(many)], chunk_size=16, overlap=0, progress=False)
    monkeypatch.setattr(ingest.np, "save", real)
    assert [v.version for v in rag.history("kb")] == [1]
    assert rag.search("kb", "Eiffel Tower", k=1)[0].source == "docs/notes.txt"  # v1 still usable
    v2 = rag.build("kb", [str(corpus / "notes.txt"), str(many)], chunk_size=16, overlap=0, progress=False)
    assert v2.ref == "kb@2" and v2.reused >= 16  # the two checkpointed groups were not embedded again
    assert workspace.get_state("rag.building.kb") is None
    assert not any((workspace.artifacts / ".staging").iterdir())


def test_corrupt_index_says_how_to_rebuild(corpus: Path, workspace) -> None:
    v = rag.build("kb", [str(corpus / "notes.txt")], progress=False)
    store.forget()
    folder = workspace.artifact_dir("index", "kb", v.version.version)
    with open(folder / "vectors.npy", "r+b") as f:
        f.seek(200)
        f.write(b"\x00garbage")
    with pytest.raises(WorkspaceError, match=r"index 'kb' is corrupt \(vectors.npy.*rebuild it with `%%rag build kb`"):
        rag.search("kb", "tower")
    (folder / "vectors.npy").unlink()
    (folder / "evil.pkl").write_bytes(b"x")
    with pytest.raises(WorkspaceError, match="vectors.npy is missing"):
        rag.search("kb", "tower")
    repaired = rag.build("kb", [str(corpus / "notes.txt")], progress=False)  # same content: repaired
    assert repaired.ref == "kb@1" and repaired.embedded == 1
    assert rag.search("kb", "tower", k=1)[0].source == "docs/notes.txt"
