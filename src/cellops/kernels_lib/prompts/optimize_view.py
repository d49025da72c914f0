"""What ``optimize`` returns: the new version, held-out scores, every trial, the diff, a table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from typing import Any

from .. import html
from . import store


@dataclass
class Trial:
    number: int  # 0 = the original version
    config: dict[str, Any]  # system / demos (case numbers) / params / model of the candidate
    train_score: float | None  # None: stopped by the budget before it finished
    calls: int  # model calls it made (cache hits excluded)
    trace: list[dict[str, Any]] = field(default_factory=list)  # its spans in the optimization's trace

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "config": self.config, "train_score": self.train_score,
                "calls": self.calls, "trace": self.trace}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


@dataclass
class OptimizeResult:
    original: store.Prompt
    prompt: store.Prompt  # the new version (the original when nothing beat it on train)
    baseline_score: float  # held-out score of the original
    score: float  # held-out score of ``prompt``
    baseline_train: float
    train_score: float
    trials: list[Trial]
    budget: dict[str, Any]  # the limits
    used: dict[str, Any]  # calls / tokens / seconds spent, cache hits
    n_train: int
    n_holdout: int
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)
    trace_id: str | None = None  # the optimization's trace (a span per trial, one per case)

    @property
    def version(self) -> str:
        return self.prompt.ref

    @property
    def improved(self) -> bool:
        return self.prompt.ref != self.original.ref

    @property
    def diff(self) -> str:
        return store.diff(self.original.ref, self.prompt.ref) if self.improved else ""

    def table(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        cols = ("version", "train score", "held-out score")
        rows = [(f"{self.original.ref} (original)", _fmt(self.baseline_train), _fmt(self.baseline_score))]
        if self.improved:
            rows.append((f"{self.prompt.ref} (optimized)", _fmt(self.train_score), _fmt(self.score)))
        return cols, rows

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([{"trial": t.number, "train_score": t.train_score, "calls": t.calls,
                              **{k: json.dumps(v) if isinstance(v, list | dict) else v
                                 for k, v in t.config.items()}} for t in self.trials])

    def summary(self) -> str:
        verdict = (f"new version {self.prompt.ref}" if self.improved
                   else f"no candidate beat {self.original.ref} on the train split; kept it")
        u = self.used
        return (f"{verdict} · held-out {_fmt(self.baseline_score)} -> {_fmt(self.score)} "
                f"({self.n_holdout} cases) · {len(self.trials) - 1} trials · used {u['calls']} calls, "
                f"{u['tokens']} tokens, {u['seconds']:.0f} s ({u.get('cache_hits', 0)} cache hits) of "
                f"{self.budget['describe']}" + (f" · run {self.run_id}" if self.run_id else ""))

    def _trial_rows(self) -> list[tuple[Any, ...]]:
        return [(t.number, _fmt(t.train_score), t.calls,
                 (t.config.get("system") or "")[:60].replace("\n", " "), t.config.get("demos", []),
                 {k: round(v, 3) if isinstance(v, float) else v for k, v in t.config.items()
                  if k in ("temperature", "top_p", "max_tokens", "model")}) for t in self.trials]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cols, rows = self.table()
        tcols = ("trial", "train", "calls", "system", "demos", "params")
        trials = self._trial_rows()
        notes = "".join(f"\nnote: {n}" for n in self.notes)
        text = (html.text_table(cols, rows) + "\n" + self.summary() + notes
                + ("\n\n" + self.diff if self.diff else "") + "\n\n" + html.text_table(tcols, trials))
        body = (html.table(cols, rows) + "".join(f"<div class='muted'>note: {escape(n)}</div>"
                                                 for n in self.notes)
                + (f"<details open><summary>diff</summary>{html.pre(self.diff)}</details>" if self.diff else "")
                + f"<details><summary>{len(self.trials)} trials</summary>{html.table(tcols, trials)}</details>")
        return {"text/plain": text, "text/html": html.box("prompt optimize", body, self.summary())}
