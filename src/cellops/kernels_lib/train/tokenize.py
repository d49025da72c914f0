"""Conversations -> (input_ids, labels) with the base model's own chat template.

Loss is on assistant tokens only: the template is rendered turn by turn, and the characters each
assistant turn adds (its content and end-of-turn marker, which teaches the model to stop) are
mapped to tokens through the fast tokenizer's offsets. Everything else gets label -100. This works
for any template that renders a conversation's prefix as a prefix of the whole (all common ones);
a template that does not is reported instead of silently training on the wrong tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from .data import MAX_REPORTED, Message, Row

IGNORE = -100


@dataclass
class Example:
    line: int
    input_ids: list[int]
    labels: list[int]
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "input_ids": self.input_ids, "labels": self.labels}


def assistant_spans(tokenizer: Any, messages: list[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the [start, end) character spans of assistant turns."""
    full = _render(tokenizer, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], add_generation_prompt=True)
        upto = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (full.startswith(upto) and upto.startswith(before)):
            raise InvalidInputError(
                "the base model's chat template does not render conversations incrementally, so "
                "assistant tokens cannot be located; use a model with a standard chat template"
            )
        spans.append((len(before), len(upto)))
    return full, spans


def _render(tokenizer: Any, messages: list[Message], add_generation_prompt: bool) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def encode(tokenizer: Any, row: Row, max_len: int) -> Example:
    text, spans = assistant_spans(tokenizer, row.messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    labels = [IGNORE] * len(ids)
    for k, (s, e) in enumerate(enc["offset_mapping"]):
        if e > s and any(a <= s < b for a, b in spans):
            labels[k] = ids[k]
    truncated = len(ids) > max_len
    return Example(row.line, ids[:max_len], labels[:max_len], truncated)


def encode_all(tokenizer: Any, rows: list[Row], max_len: int) -> tuple[list[Example], list[int]]:
    """Encode every row; rows whose answer falls entirely past ``max_len`` are errors (they would
    train nothing), rows cut short are returned as line numbers for the plan."""
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError("the base model needs a fast tokenizer (tokenizer.json) for loss masking")
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInputError("the base model has no chat template; use an instruct/chat model")
    out: list[Example] = []
    empty: list[str] = []
    for row in rows:
        ex = encode(tokenizer, row, max_len)
        if all(v == IGNORE for v in ex.labels):
            empty.append(f"line {row.line} ({len(tokenizer(_render(tokenizer, row.messages, False), add_special_tokens=False)['input_ids'])} tokens)")
        out.append(ex)
    if empty:
        more = f" (+{len(empty) - MAX_REPORTED} more)" if len(empty) > MAX_REPORTED else ""
        raise InvalidInputError(
            f"{len(empty)} row(s) have no answer token within --max-len {max_len}: "
            + "; ".join(empty[:MAX_REPORTED]) + more + ". Raise --max-len or shorten the prompts"
        )
    return out, [e.line for e in out if e.truncated]


def collate(batch: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch: pad tokens are masked out of attention and loss."""
    import torch

    n = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, b in enumerate(batch):
        k = len(b["input_ids"])
        ids[i, :k] = torch.tensor(b["input_ids"])
        labels[i, :k] = torch.tensor(b["labels"])
        mask[i, :k] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


@dataclass
class PairExample:
    """A preference pair as TRL's trainers read it (conversational: they apply the chat template),
    with our own token counts so the plan can refuse or report before anything launches."""

    line: int
    prompt: list[Message]
    chosen: str
    rejected: str
    tokens: int  # prompt + chosen + prompt + rejected, before truncation
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        answer = lambda t: [{"role": "assistant", "content": t}]  # noqa: E731
        return {"line": self.line, "prompt": self.prompt, "chosen": answer(self.chosen),
                "rejected": answer(self.rejected), "tokens": self.tokens}


def encode_pairs(tokenizer: Any, rows: list[Row], max_len: int) -> tuple[list[PairExample], list[int]]:
    """Check preference rows against ``max_len`` with the chat template TRL will apply: a prompt
    that fills ``max_len`` would be dropped by TRL without a word, so it is an error here."""
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInputError("the base model has no chat template; use an instruct/chat model")
    out: list[PairExample] = []
    full: list[str] = []
    for row in rows:
        n = lambda msgs, gen: len(tokenizer(_render(tokenizer, msgs, gen), add_special_tokens=False)["input_ids"])  # noqa: E731
        p = n(row.prompt, True)
        c = n(row.messages, False)
        r = n(row.prompt + [{"role": "assistant", "content": row.rejected or ""}], False)
        if p >= max_len:
            full.append(f"line {row.line} (prompt {p} tokens)")
        out.append(PairExample(row.line, row.prompt, row.messages[-1]["content"], row.rejected or "",
                               c + r, max(c, r) > max_len))
    if full:
        more = f" (+{len(full) - MAX_REPORTED} more)" if len(full) > MAX_REPORTED else ""
        raise InvalidInputError(
            f"{len(full)} preference row(s) have no answer token within --max-len {max_len}: "
            + "; ".join(full[:MAX_REPORTED]) + more + ". Raise --max-len or shorten the prompts"
        )
    return out, [e.line for e in out if e.truncated]
