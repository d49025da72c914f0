"""Replay of one model call from its record: a ``prompt`` run or a ``rag`` ask.

A prompt run is replayed by sending the recorded messages (as the model saw them, redactions
included) with the recorded parameters to the recorded model, under the recorded guard policy;
a rag ask by asking the recorded index version the recorded question with the same k, mode,
prompt version, model and parameters. Greedy / seeded generation on CPU is deterministic, so
the text must match exactly; timings and ids are not compared. The response cache is never used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from .. import html
from ..errors import InvalidInputError
from ..records import PromptRecord, RagRecord, RunRecord
from ..workspace import Workspace

KINDS = ("prompt", "rag")


@dataclass
class Check:
    what: str
    recorded: Any
    replayed: Any

    @property
    def matched(self) -> bool:
        return self.recorded == self.replayed


@dataclass
class CallReplay:
    """A prompt or rag run compared with its replay, field by field."""

    run_id: str
    kind: str
    replay_run_id: str | None
    checks: list[Check]
    notes: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return all(c.matched for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"of": self.run_id, "kind": self.kind, "replay": self.replay_run_id,
                "matched": self.matched, "notes": self.notes,
                "checks": [{"what": c.what, "matched": c.matched, "recorded": c.recorded,
                            "replayed": c.replayed} for c in self.checks]}

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [(c.what, "match" if c.matched else "differs", str(c.recorded)[:200],
                 "" if c.matched else str(c.replayed)[:200]) for c in self.checks]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        verdict = "outputs match" if self.matched else "outputs DIFFER"
        head = (f"replay of {self.kind} run {self.run_id}: {verdict} "
                f"({sum(c.matched for c in self.checks)}/{len(self.checks)} checks)")
        cols = ("check", "status", "recorded", "replay")
        text = "\n".join([head, html.text_table(cols, self._rows()), *self.notes])
        body = html.table(cols, self._rows()) + "".join(
            f"<p class='muted'>{html.escape(n)}</p>" for n in self.notes)
        return {"text/plain": text, "text/html": html.box("replay", body, head)}

    def __str__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]


def replay_call(ws: Workspace, original: dict[str, Any]) -> CallReplay:
    """Re-run a prompt or rag run from its record and compare; stored as a ``replay`` run."""
    rec = RunRecord.from_row(original)
    if not isinstance(rec, PromptRecord) or not rec.messages or not rec.model:
        raise InvalidInputError(f"run {rec.id} has no recorded messages and model to replay")
    result = _replay_rag(ws, rec) if isinstance(rec, RagRecord) else _replay_prompt(ws, rec)
    ws.record_run("replay", result.to_dict(), name=rec.name, version=rec.version,
                  status="ok" if result.matched else "differs")
    return result


def _policy(ws: Workspace, rec: PromptRecord) -> Any:
    from .. import guard

    return guard.load(rec.guard_policy, ws) if rec.guard_policy else None


def _replay_prompt(ws: Workspace, rec: PromptRecord) -> CallReplay:
    from ..calls import guarded_generate
    from ..models import get_llm
    from ..models.base import GenParams
    from ..tracking import Trace

    llm = get_llm(str(rec.model), ws)
    trace = Trace(f"replay prompt {rec.prompt}", **{"cellops.replay_of": rec.id})
    res = guarded_generate(llm, list(rec.messages), GenParams.from_dict(dict(rec.params)),
                           trace=trace, policy=_policy(ws, rec))
    checks = [Check("weights", rec.weights_hash, llm.weights_hash()),
              Check("blocked", rec.blocked, res.blocked), Check("output", rec.output, res.text)]
    notes = ["the recorded output came from the response cache"] if rec.cached else []
    return CallReplay(rec.id, "prompt", None, checks, notes)


def _replay_rag(ws: Workspace, rec: RagRecord) -> CallReplay:
    from ..rag.answer import ask

    a = ask(str(rec.index), rec.question, k=rec.k, model=rec.model, mode=rec.mode, prompt=rec.prompt,
            params=dict(rec.params), workspace=ws, source="replay", policy=_policy(ws, rec))
    new = cast(RagRecord, RunRecord.from_row(ws.get_run(a.run_id)))  # ask records a rag run
    checks = [Check("index", rec.corpus_hash, new.corpus_hash),
              Check("weights", rec.weights_hash, new.weights_hash),
              Check("passages", [h.get("chunk") for h in rec.hits], [h.get("chunk") for h in new.hits]),
              Check("blocked", rec.blocked, a.blocked), Check("output", rec.output, a.text),
              Check("citations", [c.get("n") for c in rec.citations], [c.get("n") for c in new.citations])]
    return CallReplay(rec.id, "rag", a.run_id, checks)
