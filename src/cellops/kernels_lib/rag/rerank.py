"""``--rerank MODEL``: rescore the top candidates with a model, pointwise: for each passage the
model is asked whether it answers the question, and P(yes) from its next-token log-probabilities
(llama.cpp, no sampling) orders them. One prompt evaluation per candidate (~130 tokens for a
PubMedQA section), so only the top ``depth`` are rescored; the rest keep their order.

Cost, as benchmarks/bench_rerank.py profiled it (qwen-0.5b, 6 queries x 20 candidates, loaded
machine): the question comes first in the prompt, so the chat header, instructions and most of
the question are reused from llama.cpp's KV cache by every candidate of a query (LlamaCppModel
keeps the cached chunks a prompt starts with); moving the whole question into the system message
(so no question token is evaluated twice) and evaluating each passage in whole 128-token chunks
changed the time per candidate by under 5%, within that run's noise, and lowered nDCG@10 on those
queries (0.477 -> 0.423), so the layout stayed. The passage is cut to ``MAX_PASSAGE_TOKENS`` of
the model's own tokenizer. Candidates are not batched into one llama.cpp call: llama-cpp-python's
``Llama`` holds a single sequence, so scoring several passages at once would need the low-level
multi-sequence API.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import InvalidInputError
from ..models.base import Message
from ..workspace import Workspace
from .retrieve import Hit

DEPTH = 10
MAX_PASSAGE_TOKENS = 256  # a 128-word chunk is ~170 tokens; longer passages are cut here
SYSTEM = "You judge search results. Reply with one word: yes or no."
PROMPT = "Question: {question}\n\nPassage: {passage}\n\nDoes the passage answer the question? Answer yes or no."


def messages(question: str, passage: str) -> list[Message]:
    """The pointwise prompt: the question before the passage, so candidates share a prefix."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT.format(question=question, passage=passage)}]


def scorer(model: str, workspace: Workspace | None = None) -> Any:
    """The loaded model, which must give next-token probabilities (a llama.cpp model)."""
    from ..models import get_llm

    llm = get_llm(model, workspace)
    if getattr(llm, "choice_probabilities", None) is None:
        raise InvalidInputError(f"--rerank needs a llama.cpp model (default, qwen-1.5b, llamacpp:...); {model} gives no log-probabilities")
    return llm


def p_yes(llm: Any, question: str, passage: str) -> float:
    """P(the passage answers the question) under ``llm``: P(yes) + P(Yes) among yes/Yes/no/No."""
    return llm.p_yes(messages(question, llm.clip_tokens(passage, MAX_PASSAGE_TOKENS)))


def rerank(question: str, hits: list[Hit], model: str, k: int, depth: int = DEPTH,
           workspace: Workspace | None = None) -> list[Hit]:
    """The top ``k`` of ``hits`` after rescoring the first ``depth`` by P(yes) under ``model``."""
    llm = scorer(model, workspace)
    head, tail = hits[:depth], hits[depth:]
    scored = [(p_yes(llm, question, h.text), h) for h in head]
    ordered = [h for _, h in sorted(scored, key=lambda t: (-t[0], t[1].rank))] + tail
    probs = {id(h): p for p, h in scored}
    return [replace(h, rank=r + 1, score=probs.get(id(h), h.score), mode=h.mode + "+rerank")
            for r, h in enumerate(ordered[:k])]
