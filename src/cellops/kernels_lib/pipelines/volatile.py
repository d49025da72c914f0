"""What may differ between two executions of the same notebook, and how a replay masks it.

Two layers. ``mask_tables`` works on each output string before it is compared: a column of a
cellops table (``html.table`` / ``html.text_table``) whose header names a timing (``ms``,
``latency_s``, ...) is blanked, since its width shifts the whole text table; a progress bar's
intermediate states (``\\r`` redraws, whose number depends on timing) are dropped. ``mask`` then
replaces figures that change on every run by nature (timestamps, ids, rates, durations, memory
free, cache counters of a replay that must not reuse the cache) with ``<name>``, and drops what
only a response-cache hit shows (the `` · cached`` mark, the trace's ``cache.hit`` event): a
replay runs with the cache off, so a recorded run answered from the cache would always differ.
"""

from __future__ import annotations

import re

VOLATILE = (
    ("timestamp", re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")),
    ("address", re.compile(r"0x[0-9a-fA-F]{6,}")),
    ("id", re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,64}\b")),
    ("rate", re.compile(r"\s*\b\d+(?:\.\d+)?\s?(?:tokens?|tok|it|samples?|chunks?|docs?)/s\b"
                        r"|tokens/s\s+\d+(?:\.\d+)?")),
    ("duration", re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|sec|secs|seconds)\b|ETA \d+m\d+s"
                            r"|\[\d\d:\d\d<[\d:?]+")),
    # a trace waterfall draws each span's start and length as a share of the whole call, and
    # lists timing attributes (``cellops.ttft_s``) as bare numbers
    ("timing", re.compile(r"\b(?:left|width):\s?\d+(?:\.\d+)?%"
                          r"|(?:(?<=[._]s</td><td>)|(?<=[._]ms</td><td>)|(?<=[._]s\": )|(?<=[._]ms\": ))"
                          r"\d+(?:\.\d+)?")),
    ("memory", re.compile(r"\b\d+(?:\.\d+)? ?(?:GiB|MiB|GB|MB)\b")),
    # a replay runs with the response cache off (it must generate again): its counters differ
    ("cache", re.compile(r"cache: \d+ hits?, \d+ miss(?:es)?")),
)
# present only in one of the two executions, so masked by removal, not by a placeholder
DROPPED = (
    ("cache", re.compile(r" · cached\b|<div><b>event cache\.hit</b>.*?</div>")),
)
TIMING_COLUMNS = {"ms", "s", "latency", "latency_s", "ttft_s", "duration", "duration_s", "wall_s",
                  "tokens/s", "time", "started", "created", "elapsed"}
_HTML_TABLE = re.compile(r"<table><thead><tr>(.*?)</tr></thead><tbody>(.*?)</tbody></table>", re.S)
_TH = re.compile(r"<th>(.*?)</th>", re.S)
_TD = re.compile(r"<td>(.*?)</td>", re.S)
_DASHES = re.compile(r"^-+(?:  -+)*$")
_BAR = re.compile(r"[^\n]*:\s*\d+%\|[^\n]*\|[^\n]*")
_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\] \[(?:DEBUG|INFO|WARNING)\] [^\n]*\n?", re.M)


def mask(text: str) -> tuple[str, set[str]]:
    hit: set[str] = set()
    for name, pattern in DROPPED:
        text, n = pattern.subn("", text)
        if n:
            hit.add(name)
    for name, pattern in VOLATILE:
        text, n = pattern.subn(f"<{name}>", text)
        if n:
            hit.add(name)
    return text, hit


def is_progress_bar(text: str) -> bool:
    """A tqdm bar shown as a display output: whether one shows depends on caches and timing."""
    return bool(_BAR.fullmatch(text.strip()))


def mask_tables(text: str) -> tuple[str, set[str]]:
    """``text`` with timing columns of its tables blanked, progress redraws and library log
    lines (DeepSpeed's ``[time] [WARNING] ...``, printed once per process) dropped."""
    hit: set[str] = set()
    text, n = _LOG_LINE.subn("", text)
    if n:
        hit.add("log")
    if "\r" in text:
        redrawn = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
        if redrawn != text:
            text = redrawn
            hit.add("progress")
    if "<table>" in text:
        text, n = _HTML_TABLE.subn(_html_table, text)
        if n and "<timing>" in text:
            hit.add("timing")
    if "--" in text:
        masked = _text_tables(text)
        if masked != text:
            text = masked
            hit.add("timing")
    return text, hit


def _html_table(m: re.Match[str]) -> str:
    heads = [h.strip() for h in _TH.findall(m.group(1))]
    cols = {i for i, h in enumerate(heads) if h in TIMING_COLUMNS}
    if not cols:
        return m.group(0)

    def row(tr: re.Match[str]) -> str:
        cells = iter(range(10_000))
        return _TD.sub(lambda td: "<td><timing></td>" if next(cells) in cols else td.group(0), tr.group(0))

    body = re.sub(r"<tr>.*?</tr>", row, m.group(2), flags=re.S)
    return f"<table><thead><tr>{m.group(1)}</tr></thead><tbody>{body}</tbody></table>"


def _text_tables(text: str) -> str:
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if not _DASHES.match(lines[i]):
            continue
        spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[i])]
        heads = [lines[i - 1][a:b].strip() for a, b in spans]
        cols = [j for j, h in enumerate(heads) if h in TIMING_COLUMNS]
        if not cols:
            continue
        j = i + 1
        while j < len(lines) and _is_row(lines[j], spans):
            cells = [lines[j][a:b].strip() for a, b in spans]
            lines[j] = "  ".join("<timing>" if k in cols else c for k, c in enumerate(cells))
            j += 1
        lines[i - 1] = "  ".join(heads)  # column widths follow the masked values: drop them
        lines[i] = "--"
    return "\n".join(lines)


def _is_row(line: str, spans: list[tuple[int, int]]) -> bool:
    """A line laid out on the table's columns: blank in every gap between two columns."""
    return bool(line.strip()) and all(line[b:b + 2].strip() == "" for b, _ in
                                      [(end, 0) for _, end in spans[:-1]])
