"""``ask``: retrieve -> retrieval rail -> versioned prompt -> guarded, streamed answer -> citations.

The answer prompt is a registered prompt version (``rag-answer``, overridable with
``prompt="NAME@V"``) that receives ``question``, ``passages`` (a list of {n, source, text}) and
``context`` (the passages as one numbered block). Citations come from the ``[n]`` markers the
model writes; a small model often writes none, so each answer sentence without a marker is
attributed to the passage it overlaps most (flagged ``explicit=False``), never to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from .. import html, prompts
from ..calls import guarded_generate
from ..errors import InvalidInputError
from ..guard import active_policy
from ..models import Generation, OnToken, get_llm
from ..models.tasks import model_for
from ..prompts.run import resolve_call
from ..tracking import Trace, genai, traces, tracker, tracker_run, waterfall
from ..workspace import Workspace, get_workspace
from .fusion import DENSE_WEIGHT
from .retrieve import Hit, traced_search
from .store import open_index
from .text import content_words, sentences

PROMPT_NAME = "rag-answer"
SYSTEM = ("You answer questions using only the numbered sources. After each claim, cite its "
          "source as [n]. If the sources do not contain the answer, say that you do not know.")
TEMPLATE = """Sources:
{% for p in passages %}[{{ p.n }}] ({{ p.source }}) {{ p.text }}
{% endfor %}
Question: {{ question }}
Answer, citing sources as [n]:"""
DEFAULT_PARAMS = {"temperature": 0.0, "max_tokens": 200}
_MARK = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


@dataclass(frozen=True)
class Citation:
    n: int  # the [n] in the answer
    hit: Hit
    explicit: bool = True  # False: inferred from overlap (the model wrote no marker)

    source = property(lambda self: self.hit.source)
    text = property(lambda self: self.hit.text)
    score = property(lambda self: self.hit.score)
    chunk = property(lambda self: self.hit.chunk.id)
    location = property(lambda self: self.hit.location)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "source": self.source, "chunk": self.chunk, "score": self.score,
                "explicit": self.explicit, "location": self.location}


def default_prompt(ws: Workspace) -> prompts.Prompt:
    """The built-in answer prompt, registered on first use (saving again is a no-op)."""
    names = ws.names(prompts.store.KIND)
    if PROMPT_NAME in names:
        return prompts.get(PROMPT_NAME, ws)
    return prompts.save(PROMPT_NAME, TEMPLATE, SYSTEM, DEFAULT_PARAMS, workspace=ws)[0]


def cite(text: str, passages: list[Hit]) -> list[Citation]:
    """Citations in order of first mention; inferred per sentence when the model wrote none."""
    found: dict[int, Citation] = {}
    for m in _MARK.finditer(text):
        for n in (int(x) for x in re.split(r"[,;]", m.group(1))):
            if 1 <= n <= len(passages) and n not in found:
                found[n] = Citation(n, passages[n - 1])
    if found or not passages:
        return list(found.values())
    words = [content_words(p.text) for p in passages]
    for sent in sentences(text):
        sw = content_words(sent)
        if len(sw) < 3:
            continue
        overlap = [len(sw & w) / len(sw) for w in words]
        best = max(range(len(passages)), key=overlap.__getitem__)
        if overlap[best] >= 0.5 and best + 1 not in found:
            found[best + 1] = Citation(best + 1, passages[best], explicit=False)
    return sorted(found.values(), key=lambda c: c.n)


@dataclass
class Answer:
    text: str
    question: str
    citations: list[Citation]
    passages: list[Hit]
    index: str
    model: str
    prompt: str
    run_id: str
    generation: Generation | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    guard: dict[str, Any] = field(default_factory=dict)
    blocked: str | None = None
    trace_id: str | None = None
    spans: Any = field(default=None, repr=False)  # the Trace, for the folded waterfall

    def __str__(self) -> str:
        return self.text

    def _meta(self) -> str:
        g = self.generation
        cost = f" · {g.completion_tokens} tokens · {g.latency_s:.1f}s" if g else ""
        return f"{self.index} · {self.prompt} · {self.model}{cost} · run {self.run_id}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cited = {c.n: c for c in self.citations}
        lines = [self.text, "", "sources:"]
        rows = []
        for n, h in enumerate(self.passages, 1):
            mark = "cited" if n in cited and cited[n].explicit else (
                "inferred" if n in cited else "")
            lines.append(f"[{n}] {h.source} ({h.location}) score {h.score:.3f} {mark}".rstrip())
            rows.append((f"[{n}]", f"{h.score:.3f}", mark,
                         f"<b>{escape(h.source)}</b> <span class='muted'>{escape(h.location)}</span>"
                         f"<details><summary>{escape(h.text[:140])}…</summary>{escape(h.text)}</details>"))
        body = "<p>" + _MARK.sub(lambda m: f"<mark>{m.group(0)}</mark>", escape(self.text)) + "</p>"
        body += html.table(("", "score", "", "passage"), rows, raw=True)
        for rail, rep in self.guard.items():
            rep_html = getattr(rep, "_repr_html_", None)
            if rep_html is not None:
                body += f"<details><summary>guard: {html.esc(rail)}</summary>{rep_html()}</details>"
        return {"text/plain": "\n".join(lines) + f"\n[{self._meta()}]",
                "text/html": html.box(self.question, body + waterfall.details(self.spans), self._meta())}


def _retrieval_rail(policy: Any, hits: list[Hit], trace: Trace) -> tuple[list[Hit], list[str], Any]:
    """Drop passages the policy blocks; use redacted text for the rest."""
    texts = [h.text for h in hits]
    check = getattr(policy, "check_retrieval", None) if policy is not None else None
    if check is None:
        return hits, texts, None
    reports = genai.guard_rail(trace, "retrieval", policy, lambda: list(check(texts)))
    kept = [(h, r.text) for h, r in zip(hits, reports, strict=True) if r.allowed]
    trace.find("guard.retrieval").attrs["guard.dropped"] = len(hits) - len(kept)
    return [h for h, _ in kept], [t for _, t in kept], reports


def ask(name: str, question: str, k: int = 4, model: str | None = None, *, hybrid: bool = False,
        mode: str | None = None, weight: float = DENSE_WEIGHT, rerank: str | None = None,
        leaves: int | None = None, reorder: int | None = None, prompt: str | None = None, params: dict[str, Any] | None = None,
        on_token: OnToken | None = None, workspace: Workspace | None = None,
        source: str = "python", policy: Any = "active",
        on_trace: Callable[[Trace], None] | None = None) -> Answer:
    """Answer ``question`` from index ``name`` with citations; recorded as a ``rag`` run.

    ``policy``: "active" (the workspace's ``%guard on`` policy), a loaded policy, or None (off).
    ``on_trace(trace)`` is called before retrieval (a live view subscribes to it there).
    ``leaves`` / ``reorder``: ScaNN's query-time settings (default: the index version's)."""
    if not question or not question.strip():
        raise InvalidInputError("the question is empty: put it in the cell body")
    ws = workspace or get_workspace()
    index = open_index(name, ws)
    trace = Trace(f"rag ask {index.ref}", **{"input.value": genai.clip(question)})
    if on_trace is not None:
        on_trace(trace)
    mode = mode or ("hybrid" if hybrid else "dense")
    hits = traced_search(trace, index, question, max(k, 10) if rerank else k, mode, weight, (leaves, reorder))
    if rerank:
        from .rerank import rerank as rescore

        with trace.span("rerank", kind="reranker", model=rerank):
            hits = rescore(question, hits, rerank, k, workspace=ws)
    if isinstance(policy, str) and policy == "active":
        policy = active_policy(ws)
    hits, texts, retrieval_reports = _retrieval_rail(policy, hits, trace)
    p = prompts.get(prompt, ws) if prompt else default_prompt(ws)
    passages = [{"n": i + 1, "source": h.source, "text": t} for i, (h, t) in enumerate(zip(hits, texts, strict=True))]
    context = "\n".join(f"[{x['n']}] {x['text']}" for x in passages)
    with trace.span("render", **{"cellops.prompt": p.ref}):
        variables = {"question": question, "passages": passages, "context": context}
        messages, model_uri, gp = resolve_call(p, variables, model_for("answer", model), params)
    with trace.span("load_model", **{"gen_ai.request.model": model_uri}):
        llm = get_llm(model_uri, ws)
    result = guarded_generate(llm, messages, gp, trace=trace, on_token=on_token, policy=policy,
                              context=texts, input_text=question)
    citations = [] if result.blocked else cite(result.text, hits)
    reports = dict(result.reports) | ({"retrieval": retrieval_reports} if retrieval_reports else {})
    run_id = _record(ws, index, question, k, mode, hits, p, llm, model_uri, gp, result, citations,
                     trace, reports, policy)
    return Answer(result.text, question, citations, hits, index.ref, model_uri, p.ref, run_id,
                  result.generation, trace.to_list(), reports, result.blocked, trace.trace_id, trace)


def _record(ws: Workspace, index: Any, question: str, k: int, mode: str, hits: list[Hit],
            p: prompts.Prompt, llm: Any, model_uri: str, gp: Any, result: Any,
            citations: list[Citation], trace: Trace, reports: dict[str, Any], policy: Any) -> str:
    gen = result.generation
    record = {
        "question": question, "index": index.ref, "corpus_hash": index.version.content["corpus_hash"],
        "embedder": index.embedder_uri, "k": k, "mode": mode,
        "hits": [h.to_dict() | {"text": h.text[:200]} for h in hits],
        "prompt": p.ref, "prompt_hash": p.hash, "model": model_uri,
        "weights_hash": llm.weights_hash(), "params": gp.to_dict(), "messages": result.messages,
        "output": result.text, "citations": [c.to_dict() for c in citations],
        "blocked": result.blocked, "prompt_tokens": gen.prompt_tokens if gen else 0,
        "completion_tokens": gen.completion_tokens if gen else 0,
        "latency_s": gen.latency_s if gen else 0.0, "trace": trace.to_list(), "trace_id": trace.trace_id,
        "guard": {r: _report_dict(v) for r, v in reports.items()},
        "guard_policy": getattr(policy, "ref", None), **tracker_run(ws.root),
    }
    run_id = ws.record_run("rag", record, index.name, index.version.version,
                           status="blocked" if result.blocked else "ok")
    trace.root.attrs["output.value"] = genai.clip(result.text)
    traces.save(ws, trace, run_id)
    tracker.log({"rag/index": index.ref, "rag/question": question, "rag/answer": result.text,
                 "rag/run_id": run_id, "rag/citations": len(citations),
                 "rag/latency_s": record["latency_s"],
                 "rag/retrieve_s": trace.find("retrieve").duration_s},
                tables={"rag/passages": (["n", "source", "score", "cited", "text"],
                                         [[i + 1, h.source, h.score, any(c.n == i + 1 for c in citations),
                                           h.text[:500]] for i, h in enumerate(hits)])})
    return run_id


def _report_dict(report: Any) -> Any:
    if isinstance(report, list):
        return [_report_dict(r) for r in report]
    to_dict = getattr(report, "to_dict", None)
    return to_dict() if to_dict is not None else repr(report)
