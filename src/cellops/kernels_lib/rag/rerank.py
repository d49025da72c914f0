"""``--rerank MODEL``: rescore the top candidates with a model, pointwise: for each passage the
model is asked whether it answers the question, and P(yes) from its next-token log-probabilities
(llama.cpp, no sampling) orders them. Costs one prompt evaluation per candidate (~0.3-1 s each
with qwen-1.5b on 2 cores), so only the top ``depth`` are rescored; the rest keep their order.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import InvalidInputError
from ..workspace import Workspace
from .retrieve import Hit

DEPTH = 10
MAX_PASSAGE_CHARS = 1500
SYSTEM = "You judge search results. Reply with one word: yes or no."
PROMPT = "Question: {question}\n\nPassage: {passage}\n\nDoes the passage answer the question? Answer yes or no."


def rerank(question: str, hits: list[Hit], model: str, k: int, depth: int = DEPTH,
           workspace: Workspace | None = None) -> list[Hit]:
    """The top ``k`` of ``hits`` after rescoring the first ``depth`` by P(yes) under ``model``."""
    from ..models import get_llm

    llm = get_llm(model, workspace)
    score = getattr(llm, "choice_probabilities", None)
    if score is None:
        raise InvalidInputError(f"--rerank needs a llama.cpp model (default, qwen-1.5b, llamacpp:...); {model} gives no log-probabilities")
    head, tail = hits[:depth], hits[depth:]
    scored = []
    for h in head:
        msgs = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": PROMPT.format(question=question, passage=h.text[:MAX_PASSAGE_CHARS])}]
        p = score(msgs, ("yes", "Yes", "no", "No"))
        scored.append((p[0] + p[1], h))
    ordered = [h for _, h in sorted(scored, key=lambda t: (-t[0], t[1].rank))] + tail
    probs = {id(h): p for p, h in scored}
    return [replace(h, rank=r + 1, score=probs.get(id(h), h.score), mode=h.mode + "+rerank")
            for r, h in enumerate(ordered[:k])]
