"""Evaluate a policy on labeled JSONL: classification rows ``{"text", "label"}`` (labels
``benign``/``safe`` are negatives, anything else a positive that should be blocked) or PII span
rows ``{"text", "spans": [{"start", "end", "type"}]}`` (span-level, overlap match, per type).

Figures: per-label precision / recall / F1, benign false-positive rate, recall at a 5% benign FPR
(a threshold sweep over the blocking checks' scores), latency p50 / p95 per text. Logged to W&B
(offline unless logged in) and recorded as a ``guard_eval`` run in the workspace.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import html
from ..errors import InvalidInputError, NotFoundError
from ..jsonl import read_jsonl
from ..workspace import Workspace, get_workspace
from .ranking import recall_at_fpr

NEGATIVE = {"benign", "safe", "negative", "ok", "0", "false"}
# Dataset entity names -> the pii check's names (presidio-research's generator writes STREET_ADDRESS,
# GPE for cities, states and countries, and ZIP_CODE; a postcode is an address part here).
TYPE_MAP = {"DOMAIN_NAME": "URL", "EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "SSN": "US_SSN",
            "IBAN": "IBAN_CODE", "IP": "IP_ADDRESS", "CREDIT_CARD_NUMBER": "CREDIT_CARD",
            "STREET_ADDRESS": "ADDRESS", "GPE": "LOCATION", "ZIP_CODE": "ADDRESS"}


@dataclass
class EvalResult:
    policy: str
    data: str
    kind: str  # "labels" | "pii"
    rows: int
    metrics: dict[str, Any]
    per_label: list[dict[str, Any]]
    errors: list[dict[str, Any]] = field(default_factory=list)  # first misclassified rows
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "data": self.data, "kind": self.kind, "rows": self.rows,
                "metrics": self.metrics, "per_label": self.per_label, "errors": self.errors,
                "run_id": self.run_id}

    def _table(self) -> tuple[list[str], list[list[Any]]]:
        cols = ["label", "support", "precision", "recall", "f1"]
        return cols, [[r["label"], r["support"], _f(r["precision"]), _f(r["recall"]), _f(r["f1"])]
                      for r in self.per_label]

    def summary(self) -> str:
        m = self.metrics
        parts = [f"{k}={_f(v)}" for k, v in m.items() if isinstance(v, (int, float))]
        return f"guard eval {self.policy} on {self.data} ({self.rows} rows, {self.kind}): " + " ".join(parts)

    def __repr__(self) -> str:
        cols, rows = self._table()
        return self.summary() + "\n" + html.text_table(cols, rows)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cols, rows = self._table()
        mrows = [(k, _f(v)) for k, v in self.metrics.items()]
        return {"text/plain": repr(self),
                "text/html": html.box(f"guard eval · {self.policy}", html.table(("metric", "value"), mrows)
                                      + html.table(cols, rows), f"{self.data} · {self.rows} rows")}


def _f(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """(precision, recall, F1) from counts; 0.0 where a ratio has no denominator. The one P/R/F1 of
    ``guard eval`` and benchmarks/bench_pii.py."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def read_rows(data: Any, workspace: Workspace | None = None) -> tuple[list[dict[str, Any]], str]:
    """(rows, label) from a JSONL path, a saved dataset ``NAME@V[:SPLIT]`` or a list of dicts."""
    if isinstance(data, (str, Path)):
        from ..datasets.resolve import rows as dataset_rows

        hit = dataset_rows(data, workspace)
        if hit is not None:
            return [r for _, r in hit[1]], hit[0]
        path = Path(data).expanduser()
        if not path.is_file():
            raise NotFoundError(f"no data file {path}; give a JSONL of {{text, label}} or {{text, spans}} rows")
        return [row for _, row in read_jsonl(path)], str(path)  # a broken row raises, by line
    return list(data), "(rows)"


def evaluate(policy: Any, data: Any, *, rail: str = "input", limit: int | None = None,
             workspace: Workspace | None = None, log: bool = True) -> EvalResult:
    """Run ``policy``'s ``rail`` on every row of ``data`` (a JSONL path, a dataset ``NAME@V`` or a
    list of dicts)."""
    from .policy import load

    ws = workspace or get_workspace()
    pol = load(policy, ws)
    rows, name = read_rows(data, ws)
    rows = rows[:limit] if limit else rows
    if not rows or not all(isinstance(r, dict) and isinstance(r.get("text"), str) for r in rows):
        raise InvalidInputError(f"{name}: every row needs a string 'text' plus 'label' or 'spans'")
    kind = "pii" if all("spans" in r for r in rows) else "labels"
    if kind == "labels" and not all("label" in r for r in rows):
        raise InvalidInputError(f"{name}: every row needs a 'label' (or every row 'spans' for PII)")
    run = {"input": pol.check_input, "output": pol.check_output, "retrieval": lambda t: pol.check_retrieval([t])[0]}
    if rail not in run:
        raise InvalidInputError(f"unknown rail '{rail}'; use input, output or retrieval")
    reports, lat = [], []
    for r in rows:
        t0 = time.perf_counter()
        reports.append(run[rail](r["text"]))
        lat.append((time.perf_counter() - t0) * 1000)
    res = (_pii_metrics if kind == "pii" else _label_metrics)(pol, rows, reports)
    res.metrics |= {"latency_p50_ms": float(np.percentile(lat, 50)), "latency_p95_ms": float(np.percentile(lat, 95))}
    res.data = name
    if log:
        _log(res, ws)
    return res


def _label_metrics(pol: Any, rows: list[dict[str, Any]], reports: list[Any]) -> EvalResult:
    y = [str(r["label"]).lower() not in NEGATIVE for r in rows]
    pred = [not rep.allowed for rep in reports]
    labels = sorted({str(r["label"]) for r, yy in zip(rows, y, strict=True) if yy})
    fp = sum(p and not t for p, t in zip(pred, y, strict=True))
    per = []
    for lab in labels:
        idx = [i for i, r in enumerate(rows) if str(r["label"]) == lab]
        tp = sum(pred[i] for i in idx)
        p, r_, f1 = prf(tp, fp, len(idx) - tp)
        per.append({"label": lab, "support": len(idx), "precision": p, "recall": r_, "f1": f1})
    tp = sum(p and t for p, t in zip(pred, y, strict=True))
    p, r_, f1 = prf(tp, fp, sum(y) - tp)
    n_neg = len(y) - sum(y)
    # Threshold-free view: the best score among blocking checks, swept to a 5% benign FPR.
    score = np.array([max((f.score for f in rep.findings if f.action == "block"), default=0.0) for rep in reports])
    yy = np.array(y)
    r_at5 = recall_at_fpr(score, yy, 0.05) if n_neg and yy.any() else 0.0
    errors = [{"text": r["text"][:200], "label": r["label"], "reason": rep.reason}
              for r, rep, t, pr in zip(rows, reports, y, pred, strict=True) if t != pr][:20]
    metrics = {"precision": p, "recall": r_, "f1": f1, "benign_fpr": fp / n_neg if n_neg else 0.0,
               "recall_at_fpr_0.05": r_at5}
    return EvalResult(pol.ref, "", "labels", len(rows), metrics, per, errors)


def gold_spans(row: dict[str, Any]) -> list[tuple[int, int, str]]:
    """A row's gold spans as (start, end, type), the dataset's type names mapped (TYPE_MAP). A span
    whose text is "nan" (a missing field presidio-research's generator printed) holds no personal
    data and is not scored."""
    return [(s["start"], s["end"], TYPE_MAP.get(s["type"], s["type"])) for s in row["spans"]
            if row["text"][s["start"]:s["end"]].strip().lower() != "nan"]


def match_spans(gold: list[tuple[int, int, str]], pred: list[tuple[int, int, str]]
                ) -> tuple[list[int], list[int], list[int]]:
    """Each gold span takes the first unused predicted span of its type that overlaps it:
    (indices of matched gold, of missed gold, of unmatched predictions). The one span scorer of
    ``guard eval`` and benchmarks/bench_pii.py."""
    used: set[int] = set()
    hit, missed = [], []
    for j, g in enumerate(gold):
        i = next((i for i, p in enumerate(pred) if i not in used and p[2] == g[2] and p[0] < g[1] and g[0] < p[1]), None)
        if i is None:
            missed.append(j)
        else:
            hit.append(j)
            used.add(i)
    return hit, missed, [i for i in range(len(pred)) if i not in used]


def _pii_metrics(pol: Any, rows: list[dict[str, Any]], reports: list[Any]) -> EvalResult:
    covered = set()
    for spec, check in pol.rails.get("input", []):
        if spec.check == "pii":
            covered |= set(check.opts["entities"])
    counts: dict[str, list[int]] = {}  # type -> [tp, fp, fn]
    errors = []
    for r, rep in zip(rows, reports, strict=True):
        gold = gold_spans(r)
        pred = [(s.start, s.end, s.label) for f in rep.findings if f.check == "pii" and f.triggered for s in f.spans]
        hit, missed, extra = match_spans(gold, pred)
        for j in hit:
            counts.setdefault(gold[j][2], [0, 0, 0])[0] += 1
        for j in missed:
            g = gold[j]
            counts.setdefault(g[2], [0, 0, 0])[2] += 1
            if g[2] in covered:
                errors.append({"text": r["text"][:200], "missed": r["text"][g[0]:g[1]], "type": g[2]})
        for i in extra:
            p = pred[i]
            counts.setdefault(p[2], [0, 0, 0])[1] += 1
            errors.append({"text": r["text"][:200], "false_positive": r["text"][p[0]:p[1]], "type": p[2]})
    per = []
    for t in sorted(counts):
        tp, fp, fn = counts[t]
        p, r_, f1 = prf(tp, fp, fn)
        per.append({"label": t + ("" if t in covered else " (not covered)"), "support": tp + fn,
                    "precision": p, "recall": r_, "f1": f1})
    from .checks.pii import PATTERN_ENTITIES

    metrics: dict[str, Any] = {}
    # structured (pattern) types and NER types apart: their figures differ by an order of magnitude
    for group, types in (("structured", covered & set(PATTERN_ENTITIES)), ("ner", covered - set(PATTERN_ENTITIES))):
        if group == "ner" and not types:
            continue
        tot = [sum(counts[t][i] for t in counts if t in types) for i in range(3)]
        p, r_, f1 = prf(*tot)
        metrics |= {f"{group}_precision": p, f"{group}_recall": r_, f"{group}_f1": f1,
                    f"{group}_types": ",".join(sorted(t for t in counts if t in types))}
    return EvalResult(pol.ref, "", "pii", len(rows), metrics, per, errors[:20])


def _log(res: EvalResult, ws: Workspace) -> None:
    from ..tracking import tracker, tracker_run

    cited = tracker_run(ws.root, job_type="guard-eval")
    scalars = {f"guard_eval/{k}": v for k, v in res.metrics.items() if isinstance(v, (int, float))}
    cols, rows = res._table()
    tracker.log(scalars | {"guard_eval/policy": res.policy, "guard_eval/data": res.data},
                tables={"guard_eval/per_label": (cols, rows)})
    tracker.summary(scalars)
    res.run_id = ws.record_run("guard_eval", res.to_dict() | cited,
                               name=res.policy.split("@")[0])
