"""``--rerank MODEL``: rescore the top candidates with a model, pointwise: for each passage the
model is asked whether it answers the question, and P(yes) from its next-token log-probabilities
(llama.cpp, no sampling) orders them. One prompt evaluation per candidate, so only the top
``depth`` are rescored; the rest keep their order.

What a candidate costs is the tokens evaluated for it (benchmarks/bench_rerank.py profiles it):
- the question sits in the system message, before any passage, so the chat header, instructions
  and question are evaluated once per query and reused from llama.cpp's KV cache by every
  candidate (LlamaCppModel restarts its chunk grid where each message's content begins, so the
  passage never shares a chunk with the question);
- the passage is evaluated in whole 128-token chunks (``coarse=True``) rather than the 16-token
  chunks a chat's first tokens get, which llama.cpp runs faster per token on CPU;
- the passage is cut to ``MAX_PASSAGE_TOKENS`` tokens of the model's own tokenizer.
Candidates are not batched into one llama.cpp call: llama-cpp-python's ``Llama`` holds a single
sequence, so scoring several passages in one batch would need the low-level multi-sequence API.
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
SYSTEM = ("You judge search results. Reply with one word: yes or no.\n\n"
          "Question: {question}")
PROMPT = "Passage: {passage}\n\nDoes the passage answer the question? Answer yes or no."
WORDS = ("yes", "Yes", "no", "No")


def messages(question: str, passage: str) -> list[Message]:
    """The pointwise prompt: the question in the shared system message, the passage after it."""
    return [{"role": "system", "content": SYSTEM.format(question=question)},
            {"role": "user", "content": PROMPT.format(passage=passage)}]


def scorer(model: str, workspace: Workspace | None = None) -> Any:
    """The loaded model, which must give next-token probabilities (a llama.cpp model)."""
    from ..models import get_llm

    llm = get_llm(model, workspace)
    if getattr(llm, "choice_probabilities", None) is None:
        raise InvalidInputError(f"--rerank needs a llama.cpp model (default, qwen-1.5b, llamacpp:...); {model} gives no log-probabilities")
    return llm


def p_yes(llm: Any, question: str, passage: str) -> float:
    """P(the passage answers the question) under ``llm``: P(yes) + P(Yes) among yes/Yes/no/No."""
    p = llm.choice_probabilities(messages(question, llm.clip_tokens(passage, MAX_PASSAGE_TOKENS)),
                                 WORDS, coarse=True)
    return p[0] + p[1]


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
