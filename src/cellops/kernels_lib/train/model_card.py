"""A registered model's card with an evaluation-and-risk section filled from what was measured.

The training card (``card.json`` in the model version, written by register.py) is immutable, so
evaluations are records beside it: every ``%prompt test --model NAME@V`` run (test suites and
pass rates), every ``%prompt perturb --model NAME@V`` run (the robustness table) and every
``evaluate_card`` run (a guard evaluation of the model's own answers to the project's red-team
prompts, ``redteam.jsonl``: 40 prompts in 8 categories, scored by the guard's output rail). The
card shows the latest of each, with dates and versions.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from .. import html
from ..errors import NotFoundError
from ..workspace import Version, Workspace, get_workspace

REDTEAM_FILE = Path(__file__).with_name("redteam.jsonl")
EVAL_KIND = "model_eval"
# The output rail that scores answers when no policy is on: strict's has pii, harmful and refusal
# (default's only has pii and groundedness, which says nothing about a harmful answer).
FALLBACK_POLICY = "strict"


def redteam_prompts() -> list[dict[str, str]]:
    text = REDTEAM_FILE.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _is_model(ws: Workspace, uri: Any, target: Version) -> bool:
    """Does model URI ``uri`` (as a run recorded it) name the ``target`` registry version?"""
    if not isinstance(uri, str) or ":" in uri or uri == "default":
        return False
    try:
        v = ws.resolve("model", uri)
    except (NotFoundError, ValueError):
        return False
    return (v.name, v.version) == (target.name, target.version)


def _runs(ws: Workspace, kind: str, target: Version) -> list[dict[str, Any]]:
    return [r for r in ws.list_runs(kind, limit=500) if _is_model(ws, r["record"].get("model"), target)]


@dataclass
class ModelCard:
    """Training card + evaluation-and-risk section; displays as text and escaped HTML."""

    ref: str
    training: dict[str, Any]
    suites: list[dict[str, Any]] = field(default_factory=list)
    robustness: list[dict[str, Any]] = field(default_factory=list)
    redteam: dict[str, Any] | None = None

    def sections(self) -> list[tuple[str, list[str], list[list[Any]]]]:
        """(title, columns, rows) for each table, shared by text and HTML."""
        t = self.training
        m = t.get("metrics", {})
        train_rows = [[k, v] for k, v in (
            ("base model", t.get("base_model")), ("method", t.get("config", {}).get("method")),
            ("data", f"{t.get('data_source')} (hash {str(t.get('data_hash'))[:12]})"),
            ("eval loss before / after", f"{m.get('eval_loss_before')} / {m.get('eval_loss_after')}"),
            ("training run", t.get("run_id"))) if v is not None and "None" not in str(v)]
        out = [("training", ["field", "value"], train_rows or [["(no training card)", self.ref]])]
        out.append(("test suites", ["date", "prompt", "model", "passed", "pass rate", "run"], [
            [s["date"], s["prompt"], s["model"], f"{s['passed']}/{s['total']}", f"{s['pass_rate']:.0%}", s["run"]]
            for s in self.suites]))
        out.append(("robustness (perturbed cases)", ["date", "prompt", "kind", "cases", "pass rate",
                                                     "clean", "guard caught", "run"], [
            [r["date"], r["prompt"], k["kind"], k["cases"], f"{k['pass_rate']:.0%}", f"{k['clean_pass_rate']:.0%}",
             "-" if k.get("guard_caught") is None else f"{k['guard_caught']:.0%}", r["run"]]
            for r in self.robustness[:1] for k in r["table"]]))
        rt = self.redteam
        out.append(("red-team guard evaluation", ["category", "prompts", "flagged by output rail",
                                                  "refused", "example answer"], [
            [c, d["n"], f"{d['flagged']}/{d['n']}", f"{d['refused']}/{d['n']}", d["example"][:80]]
            for c, d in (rt or {}).get("categories", {}).items()]))
        return out

    def summary(self) -> str:
        rt = self.redteam
        red = (f"red team {rt['flagged']}/{rt['n']} answers flagged, {rt['refused']} refused "
               f"(policy {rt['policy']}, set {rt['set_hash'][:10]}, {rt['date']})") if rt else "no red-team evaluation yet"
        return f"model {self.ref} · {len(self.suites)} test run(s) · {len(self.robustness)} robustness run(s) · {red}"

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "training": self.training, "suites": self.suites,
                "robustness": self.robustness, "redteam": self.redteam}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        text, body = [self.summary()], ""
        for title, cols, rows in self.sections():
            text += ["", f"## {title}", html.text_table(cols, rows) if rows else "(none measured yet)"]
            body += f"<h4>{escape(title)}</h4>" + (html.table(cols, rows) if rows else "<i>none measured yet</i>")
        return {"text/plain": "\n".join(text), "text/html": html.box(f"model card {self.ref}", body, self.summary())}


def _suites(ws: Workspace, target: Version) -> list[dict[str, Any]]:
    out = []
    for r in _runs(ws, "prompt_test", target):
        rec = r["record"]
        total = rec.get("passed", 0) + rec.get("failed", 0)
        out.append({"date": _when(r["created_at"]), "prompt": rec.get("prompt"), "model": rec.get("model"),
                    "passed": rec.get("passed", 0), "total": total,
                    "pass_rate": rec.get("passed", 0) / total if total else 0.0, "run": r["id"]})
    return out


def _robustness(ws: Workspace, target: Version) -> list[dict[str, Any]]:
    return [{"date": _when(r["created_at"]), "prompt": r["record"].get("prompt"),
             "table": r["record"].get("table", []), "run": r["id"]} for r in _runs(ws, "prompt_perturb", target)]


def model_card(ref: str, workspace: Workspace | None = None) -> ModelCard:
    """The card of registered model ``ref`` with everything measured on it so far (runs nothing)."""
    ws = workspace or get_workspace()
    v = ws.resolve("model", ref)
    path = ws.artifact_dir("model", v.name, v.version) / "card.json"
    training = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    evals = [r for r in ws.list_runs(EVAL_KIND, v.name, limit=50) if r["version"] == v.version]
    return ModelCard(v.ref, training, _suites(ws, v), _robustness(ws, v),
                     evals[0]["record"] if evals else None)


def _score(policy: Any, check_of: dict[str, str], answer: str) -> tuple[bool, bool, list[str]]:
    """(flagged, refused, what fired) for one answer on the policy's output rail."""
    rep = policy.check_output(answer)
    fired = [f.check for f in rep.findings if f.triggered]
    refused = any(check_of.get(c) == "refusal" for c in fired)
    flagged = not rep.allowed or any(check_of.get(c) not in ("refusal", "groundedness") for c in fired)
    return flagged, refused, fired


def evaluate_card(ref: str, *, limit: int | None = None, max_tokens: int = 64, policy: Any = None,
                  workspace: Workspace | None = None) -> ModelCard:
    """Answer the red-team prompts with model ``ref`` (greedy), score every answer with the guard's
    output rail (``policy``, else the active one, else built-in strict), record it, return the card.

    ``limit`` takes the first prompts of each category in turn (a quick check); the record keeps
    the set's hash and size so a partial run is never mistaken for the full one.
    """
    from ..guard import active_policy
    from ..guard import load as load_policy
    from ..models import get_llm
    from ..models.base import GenParams

    ws = workspace or get_workspace()
    v = ws.resolve("model", ref)
    pol = load_policy(policy, ws) if policy is not None else (active_policy(ws) or load_policy(FALLBACK_POLICY, ws))
    check_of = {spec.id: spec.check for spec, _ in pol.rails.get("output", [])}
    prompts = redteam_prompts()
    if limit is not None:  # round-robin over categories, so a small run still covers each
        by_cat: dict[str, list[dict[str, str]]] = {}
        for p in prompts:
            by_cat.setdefault(p["category"], []).append(p)
        prompts = [p for i in range(max(len(x) for x in by_cat.values())) for x in by_cat.values()
                   if i < len(x) for p in [x[i]]][:limit]
    llm = get_llm(v.ref, ws)
    params = GenParams(temperature=0.0, max_tokens=max_tokens)
    cats: dict[str, dict[str, Any]] = {}
    answers = []
    for p in prompts:
        answer = llm.generate([{"role": "user", "content": p["prompt"]}], params).text.strip()
        flagged, refused, fired = _score(pol, check_of, answer)
        c = cats.setdefault(p["category"], {"n": 0, "flagged": 0, "refused": 0, "example": answer})
        c["n"] += 1
        c["flagged"] += flagged
        c["refused"] += refused
        answers.append({"id": p["id"], "answer": answer[:500], "flagged": flagged, "refused": refused, "fired": fired})
    record = {"model": v.ref, "model_hash": llm.weights_hash(), "policy": pol.ref, "policy_hash": pol.hash,
              "set": REDTEAM_FILE.name, "set_hash": hashlib.sha256(REDTEAM_FILE.read_bytes()).hexdigest(),
              "set_size": len(redteam_prompts()), "n": len(prompts), "max_tokens": max_tokens,
              "flagged": sum(a["flagged"] for a in answers), "refused": sum(a["refused"] for a in answers),
              "categories": cats, "answers": answers, "date": _when(time.time())}
    ws.record_run(EVAL_KIND, record, v.name, v.version)
    return model_card(v.ref, ws)
