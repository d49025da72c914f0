"""Chunkers: a document's text -> spans to embed. ``token`` (sliding window with overlap),
``markdown`` (heading-aware: sections, with their heading path), ``code`` (top-level definitions)
and ``auto`` (by document kind). A span is exact character offsets, so a citation can point at
the very passage in the source.

"Tokens" are whitespace-separated words: cheap, deterministic and independent of the embedder
(MiniLM reads ~1.3 word pieces per word, so the default 128 words fit its 256-piece window).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..registry import Registry


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    heading: str = ""  # "Install > From source" for markdown sections


Chunker = Callable[[str, str, int, int], list[Span]]
chunkers: Registry[Chunker] = Registry("chunker", "chunkers")

_WORD = re.compile(r"\S+")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def check_sizes(size: int, overlap: int) -> None:
    if size < 8:
        raise InvalidInputError(f"--chunk-size must be at least 8 tokens, got {size}")
    if not 0 <= overlap < size:
        raise InvalidInputError(f"--overlap must be between 0 and chunk size - 1, got {overlap}")


def _windows(text: str, start: int, end: int, size: int, overlap: int, heading: str = "") -> list[Span]:
    """Sliding windows of ``size`` words (``overlap`` shared) over text[start:end]."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
    if not words:
        return []
    spans, step = [], size - overlap
    for i in range(0, len(words), step):
        w = words[i:i + size]
        spans.append(Span(w[0][0], w[-1][1], heading))
        if i + size >= len(words):
            break
    return spans


@chunkers.register("token")
def token_chunker(text: str, kind: str, size: int, overlap: int) -> list[Span]:
    return _windows(text, 0, len(text), size, overlap)


def _sections(text: str) -> list[tuple[int, int, str]]:
    """(start, end, heading path) of each markdown section; headings inside code fences ignored."""
    bounds: list[tuple[int, int, str]] = []  # (offset, level, title)
    offset, fenced = 0, False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line.rstrip("\n"))):
            bounds.append((offset, len(m.group(1)), m.group(2)))
        offset += len(line)
    out, path = [], []  # path: [(level, title)]
    starts = [0] + [b[0] for b in bounds]
    heads = [None, *bounds]
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else len(text)
        if heads[i] is not None:
            _, level, title = heads[i]
            path = [p for p in path if p[0] < level] + [(level, title)]
        if text[s:e].strip():
            out.append((s, e, " > ".join(t for _, t in path)))
    return out


@chunkers.register("markdown")
def markdown_chunker(text: str, kind: str, size: int, overlap: int) -> list[Span]:
    """One chunk per section; long sections are windowed, short neighbours under one heading merged."""
    spans: list[Span] = []
    whole = False  # the last span is a whole section (windows of a long one are never merged)
    for s, e, heading in _sections(text):
        n = len(_WORD.findall(text, s, e))
        if n > size:
            spans += _windows(text, s, e, size, overlap, heading)
            whole = False
            continue
        prev = spans[-1] if spans else None
        # merge a small section into the previous chunk when they share a top heading
        if (whole and prev and prev.heading.split(" > ")[0] == heading.split(" > ")[0]
                and len(_WORD.findall(text, prev.start, e)) <= size):
            spans[-1] = Span(prev.start, e, prev.heading)
        else:
            spans.append(Span(s, e, heading))
            whole = True
    return [Span(*_strip(text, sp.start, sp.end), sp.heading) for sp in spans]


def _strip(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _line_offsets(text: str) -> list[int]:
    offs, o = [0], 0
    for line in text.splitlines(keepends=True):
        o += len(line)
        offs.append(o)
    return offs


def _code_blocks(text: str) -> list[tuple[int, int, str]]:
    """Top-level statements grouped so each def/class (with decorators) starts a block."""
    offs = _line_offsets(text)
    try:
        body = ast.parse(text).body
    except (SyntaxError, ValueError):
        body = None
    if not body:  # not Python (or unparsable): blocks start at unindented, non-blank lines after a blank
        starts = [0] + [m.start() for m in re.finditer(r"(?<=\n\n)(?=\S)", text)]
        return [(s, starts[i + 1] if i + 1 < len(starts) else len(text), "")
                for i, s in enumerate(starts)]
    blocks: list[tuple[int, int, str]] = []
    cur_start, cur_name = 0, ""
    for node in body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            s = offs[first - 1]
            if s > cur_start:
                blocks.append((cur_start, s, cur_name))
            cur_start, cur_name = s, node.name
    blocks.append((cur_start, len(text), cur_name))
    return blocks


@chunkers.register("code")
def code_chunker(text: str, kind: str, size: int, overlap: int) -> list[Span]:
    """Whole definitions per chunk when they fit; small neighbours merged, long ones windowed."""
    spans: list[Span] = []
    whole = False
    for s, e, name in _code_blocks(text):
        s, e = _strip(text, s, e)
        if s >= e:
            continue
        n = len(_WORD.findall(text, s, e))
        if n > size:
            spans += _windows(text, s, e, size, overlap, name)
            whole = False
        elif whole and len(_WORD.findall(text, spans[-1].start, e)) <= size:
            prev = spans[-1]
            spans[-1] = Span(prev.start, e, ", ".join(x for x in (prev.heading, name) if x))
        else:
            spans.append(Span(s, e, name))
            whole = True
    return spans


@chunkers.register("auto")
def auto_chunker(text: str, kind: str, size: int, overlap: int) -> list[Span]:
    name = {"md": "markdown", "code": "code"}.get(kind, "token")
    return chunkers.get(name)(text, kind, size, overlap)
