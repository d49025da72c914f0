"""Sources -> documents: files, folders, globs, DataFrames and lists, one loader per file type.

A loader turns one file into one or more :class:`Document` s (a JSONL file is many documents, a
PDF one document per page). Failures are never fatal: the file is listed in ``skipped`` with the
reason, and the build goes on with the rest.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..jsonl import read_rows
from ..registry import Registry


@dataclass(frozen=True)
class Document:
    source: str  # the file (relative to the build's base folder) or "VAR[i]"
    doc_id: str  # the id evaluation qrels refer to (a record's _id/id, else the source)
    text: str
    kind: str = "text"  # text | md | code: picks the chunker under --chunker auto
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class SourceFile:
    """One unit of incremental rebuild: a file (or a variable) and the hash of its content."""

    source: str
    hash: str
    documents: list[Document]
    bad_rows: list[tuple[int, str]] = field(default_factory=list)  # (line, reason): skipped rows


class Documents(list):  # type: ignore[type-arg]
    """What a loader of many records returns: the documents, plus the rows it had to skip."""

    def __init__(self, docs: Iterable[Document], bad_rows: list[tuple[int, str]]) -> None:
        super().__init__(docs)
        self.bad_rows = bad_rows


Loader = Callable[[Path, str], list[Document]]
loaders: Registry[Loader] = Registry("loader", "loaders")

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".cellops", ".ipynb_checkpoints", "node_modules",
             ".venv", "venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
TEXT_FIELDS = ("text", "contents", "content", "body", "passage", "contexts", "context",
               "document", "abstract", "page_content")
ID_FIELDS = ("_id", "id", "doc_id", "docid", "pmid", "corpus_id")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("not UTF-8 text") from None


def _plain(kind: str) -> Loader:
    def load(path: Path, source: str) -> list[Document]:
        return [Document(source, source, _read_text(path), kind)]
    return load


for _ext, _kind in ((".txt", "text"), (".rst", "text"), (".md", "md"), (".markdown", "md"),
                    (".py", "code")):
    loaders.register(_ext, _plain(_kind))


class _HTMLText(HTMLParser):
    """Visible text of an HTML page; headings become markdown headings for the markdown chunker."""

    SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    BLOCK = {"p", "div", "li", "tr", "br", "section", "article", "pre", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"} or tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


@loaders.register(".html")
def _html(path: Path, source: str) -> list[Document]:
    p = _HTMLText()
    p.feed(_read_text(path))
    lines = [" ".join(x.split()) for x in "".join(p.parts).splitlines()]
    text = "\n".join(x for x in lines if x)
    return [Document(source, source, text, "md")]


loaders.register(".htm", _html)


@loaders.register(".pdf")
def _pdf(path: Path, source: str) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise InvalidInputError("encrypted PDF")
        pages = [(i + 1, page.extract_text() or "") for i, page in enumerate(reader.pages)]
    except (PdfReadError, ValueError, KeyError, OSError) as e:
        raise InvalidInputError(f"unreadable PDF ({e})") from None
    return [Document(source, source, text, "text", {"page": n}) for n, text in pages if text.strip()]


@loaders.register(".ipynb")
def _ipynb(path: Path, source: str) -> list[Document]:
    try:
        nb = json.loads(_read_text(path))
        cells = nb["cells"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InvalidInputError("not a notebook (invalid JSON)") from None
    parts = []
    for c in cells:
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        if not src.strip():
            continue
        parts.append(src if c.get("cell_type") == "markdown" else f"```python\n{src}\n```")
    return [Document(source, source, "\n\n".join(parts), "md")]


def record_document(row: Any, source: str, fallback_id: str) -> Document | None:
    """A JSON/CSV/DataFrame record -> Document (text from the first known text field)."""
    if isinstance(row, str):
        return Document(source, fallback_id, row, "text") if row.strip() else None
    if not isinstance(row, dict):
        return None
    doc_id = next((str(row[k]) for k in ID_FIELDS if row.get(k) not in (None, "")), fallback_id)
    text = next((row[k] for k in TEXT_FIELDS if row.get(k) not in (None, "")), None)
    if text is None:  # no known text field: every string field as "key: value"
        text = "\n".join(f"{k}: {v}" for k, v in row.items() if isinstance(v, str) and k not in ID_FIELDS)
    if isinstance(text, list):
        text = "\n".join(str(t) for t in text)
    text = str(text)
    if isinstance(row.get("title"), str) and row["title"].strip():
        text = f"{row['title'].strip()}\n{text}"
    meta = {k: v for k, v in row.items() if isinstance(v, (str, int, float, bool))
            and k not in TEXT_FIELDS and k != "title" and len(str(v)) < 200}
    return Document(source, doc_id, text, "text", meta) if text.strip() else None


def _records(rows: Iterable[Any], source: str) -> list[Document]:
    docs = [record_document(r, source, f"{source}#{i}") for i, r in enumerate(rows)]
    return [d for d in docs if d is not None]


@loaders.register(".jsonl")
def _jsonl(path: Path, source: str) -> list[Document]:
    """One document per record; a broken row is reported by its line and the rest is used."""
    rows, bad = read_rows(path)
    return Documents(_records((r for _, r in rows), source), bad.lines)


@loaders.register(".json")
def _json(path: Path, source: str) -> list[Document]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"invalid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, list):
        return _records(data, source)
    return [Document(source, source, json.dumps(data, indent=1, ensure_ascii=False), "text")]


@loaders.register(".csv")
def _csv(path: Path, source: str) -> list[Document]:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"unreadable CSV ({e})") from None
    return _records(df.to_dict("records"), source)


# -- expanding sources ---------------------------------------------------------------------------
def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(files):
            if not f.startswith("."):
                yield Path(root) / f


def _rel(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def expand(sources: Any, base: Path, workspace: Any = None
           ) -> tuple[list[Path | tuple[str, Any]], list[tuple[str, str]]]:
    """Sources -> (files and in-memory objects, [(source, reason)] for what cannot be used).

    A string is a file, a folder (walked recursively), a glob, or a saved dataset ``NAME@V``
    (its rows are the documents); anything else (a DataFrame, a list of strings or records) is
    an in-memory source named ``data`` or by its key in a dict.
    """
    from ..datasets.resolve import find as find_dataset

    if isinstance(sources, (str, os.PathLike)):
        sources = [s for s in str(sources).splitlines() if s.strip()] or [str(sources)]
    items = sources.items() if isinstance(sources, dict) else [(None, s) for s in sources]
    found: list[Path | tuple[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for i, (label, src) in enumerate(items):
        if not isinstance(src, (str, os.PathLike)):
            found.append((label or f"data{i}", src))
            continue
        s = os.path.expanduser(str(src).strip())
        p = Path(s) if Path(s).is_absolute() else base / s
        if any(c in s for c in "*?["):
            hits = sorted(Path(h) for h in glob.glob(str(p), recursive=True))
            files = [h for h in hits if h.is_file()]
            found += files
            if not files:
                skipped.append((s, "glob matched no files"))
        elif p.is_dir():
            found += list(_walk(p))
        elif p.is_file():
            found.append(p)
        elif (ds := find_dataset(s, workspace)) is not None:
            found.append((f"dataset {ds.ref}", ds.records()))
        else:
            skipped.append((s, "not found"))
    return found, skipped


def _hash_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def load_file(path: Path, base: Path) -> SourceFile:
    """Raises InvalidInputError (with the reason) for unsupported or unreadable files."""
    source = _rel(path, base)
    ext = path.suffix.lower()
    if ext not in loaders:
        raise InvalidInputError(f"unsupported file type '{ext or path.name}'")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"unreadable ({e.strerror})") from None
    docs = loaders.get(ext)(path, source)
    return SourceFile(source, _hash_bytes(data), docs, list(getattr(docs, "bad_rows", [])))


def load_object(label: str, obj: Any) -> SourceFile:
    """A DataFrame, a list of strings / records, or a single string -> a SourceFile."""
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # a pandas DataFrame
        rows = obj.to_dict("records")
    elif isinstance(obj, (list, tuple)):
        rows = list(obj)
    else:
        raise InvalidInputError(
            f"source '{label}' is a {type(obj).__name__}; use a path, a DataFrame or a list of strings")
    docs = [record_document(r, f"{label}[{i}]", f"{label}[{i}]") for i, r in enumerate(rows)]
    docs = [d for d in docs if d is not None]
    h = _hash_bytes(json.dumps([(d.doc_id, d.text) for d in docs]).encode())
    return SourceFile(label, h, docs)
