"""Every text/html a view or widget produces shows untrusted text as text: a prompt, a passage, a
model answer, an error message or a record field holding <script> or <img onerror> stays inert."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cellops.kernels_lib.guard.evaluation import EvalResult as GuardEval
from cellops.kernels_lib.guard.report import Finding, Report, Span
from cellops.kernels_lib.guard.views import GuardStatus, PolicyList
from cellops.kernels_lib.pipelines.replays import CellComparison, Replay
from cellops.kernels_lib.pipelines.reports import build_html
from cellops.kernels_lib.pipelines.result import PipelineRun
from cellops.kernels_lib.pipelines.schedules import Schedule, ScheduleList
from cellops.kernels_lib.pipelines.values import Recorded
from cellops.kernels_lib.prompts.assertions import Check
from cellops.kernels_lib.prompts.cache import CacheStats
from cellops.kernels_lib.prompts.cases import Case
from cellops.kernels_lib.prompts.feedback import Export
from cellops.kernels_lib.prompts.grid import Cell, Column, CompareResult
from cellops.kernels_lib.prompts.run import PromptRun
from cellops.kernels_lib.prompts.store import Prompt
from cellops.kernels_lib.prompts.testing import TestReport
from cellops.kernels_lib.rag.answer import Answer, Citation
from cellops.kernels_lib.rag.embmap import EmbeddingMap
from cellops.kernels_lib.rag.evaluation import EvalResult as RagEval
from cellops.kernels_lib.rag.ingest import IndexVersion
from cellops.kernels_lib.rag.retrieve import Hit, SearchResult
from cellops.kernels_lib.rag.store import Chunk
from cellops.kernels_lib.train.view import summary_html
from cellops.kernels_lib.workspace import Version

P = "<script>alert(1)</script> <img src=x onerror=alert(1)>"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.live: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed"):
            self.live.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.live.append(f"<{tag} {name}={value}>")
            if tag == "img" and name == "src" and value == "x":
                self.live.append("<img src=x>")

    handle_startendtag = handle_starttag


def assert_inert(markup: str, where: str) -> None:
    assert "<script>alert(1)" not in markup and "<img src=x" not in markup, where
    tags = _Tags()
    tags.feed(markup)
    tags.close()
    assert tags.live == [], (where, tags.live)
    assert "&lt;script&gt;" in markup or "&lt;img src=x" in markup, f"{where}: the payload never reached the HTML"


def prompt() -> Prompt:
    return Prompt(P, 1, "ab" * 32, P, system=P, params={"model": P}, aliases=(P,))


def hit() -> Hit:
    return Hit(1, 0.5, Chunk(1, P, P, P, heading=P, meta={"page": P}))


def report() -> Report:
    f = Finding(P, P, 0.5, True, P, [Span(0, 8, P)], P, 1.0, P)
    return Report(P, P, P, P + "!", [f], notes=[P], latency_ms={"embed": 1.0})


def grid(columns: int = 2) -> CompareResult:
    col = Column(P, prompt(), P)
    case = Case(1, P, {P: P}, description=P)
    ok = Cell(0, 0, [], output=P, latency_s=0.1, checks=[Check(P, P, False, P)])
    failed = Cell(0, 1, [], error=P)
    return CompareResult([col] * columns, [case], [[ok, failed][:columns]], CacheStats(), 1.0, run_id=P)


def job() -> Any:
    metrics = {"status": P, "max_steps": 10, "step": 1, "loss": 0.5, "losses": [(1, 0.5)],
               "eval_losses": [], "eval_loss_before": None, "eval_loss_after": None}
    sample = {"messages": [{"role": "user", "content": P}], "reference": P, "before": P, "after": P}
    return SimpleNamespace(name=P, run_id=P, metrics=metrics, plan={"reason": P, "notes": [P]},
                           model=P, error=P, samples=[sample])


def index_version() -> Version:
    content = {"counts": {"files": 1, "documents": 1, "chunks": 1}, "ann": {"kind": P}, "embedder": P,
               "corpus_hash": P, "chunker": P, "chunk_size": 1, "overlap": 0, "sources": [P],
               "skipped": [(P, P)]}
    return Version("index", P, 1, "cd" * 32, content, time.time(), (P,))


def runs() -> list[dict[str, Any]]:
    return [{"id": P + str(i), "name": P, "status": P, "created_at": time.time(),
             "record": {"error": {"message": P}, "params": {P: i}, "touched": {P: P + str(i)},
                        "output_html": f"/tmp/{P}.html", "env": {"packages": {P: str(i)}}}}
            for i in range(2)]


def trace() -> Any:
    from cellops.kernels_lib.tracking import Trace

    t = Trace(P, **{P: P})
    with t.span(P, **{"input.value": P, P: P}) as span:
        span.add_event(P, **{P: P})
    return t


def views() -> dict[str, Any]:
    from cellops.magics.finetune import RunsView
    from cellops.magics.guard import _Saved
    from cellops.magics.views import PromptListView, TextView
    from cellops.widgets.rag_views import IndexListView, IndexView

    schedules = ScheduleList([Schedule(P, P, P, {P: P}, None, {"timeout": P})])
    schedules.unmoved = (P,)
    return {
        "prompt run": PromptRun(P, prompt(), P, P, [], {}, None, guard={"input": report(), P: report()}),
        "rag answer": Answer(P, P, [Citation(1, hit())], [hit()], P, P, P, P, guard={P: report()}),
        "compare grid": grid(),
        "prompt test": TestReport(prompt(), P, grid(columns=1)),
        "guard report": report(),
        "guard status": GuardStatus(P, message=P),
        "guard policies": PolicyList([(P, P, P, P)]),
        "guard saved": _Saved(P, GuardStatus(None, message=P)),
        "guard eval": GuardEval(P, P, P, 1, {P: 0.5}, [{"label": P, "support": 1, "precision": 0.5,
                                                       "recall": 0.5, "f1": 0.5}]),
        "pipeline run": PipelineRun(P, P, {"notebook": P, "params": {P: P}, "values": {P: P},
                                           "output_notebook": P, "output_html": P, "error": {"message": P}}),
        "replay": Replay(P, P, P, P, [CellComparison(1, P, P, [P], P)], [P]),
        "recorded": Recorded({P: P}),
        "schedules": schedules,
        "search": SearchResult([hit()], P, P, P),
        "search frame": SearchResult([hit()], P, P, P).df,
        "index build": IndexVersion(index_version(), True, skipped=[(P, P)]),
        "index list": IndexListView([index_version()]),
        "index": IndexView(index_version()),
        "rag eval": RagEval({f"dense/{P}": 0.5, f"answer/{P}": 0.5}, P, 1, 5),
        "embedding map": EmbeddingMap(b"png", P, 3, P, 2),
        "feedback export": Export(Path(P), P, 1, 1),
        "text": TextView(P),
        "prompt list": PromptListView([prompt()]),
        "finetune runs": RunsView([job()]),
        "trace waterfall": trace(),
        **chain_views(),
    }


def chain_views() -> dict[str, Any]:
    from cellops.kernels_lib.chains import Chain, ChainList, ChainRun, StepResult, parse

    spec = parse({"description": P, "steps": {"a": {"python": "m:f", "args": {"x": P}, "when": f"'{P}'"}}})
    chain = Chain(P, 1, P, spec, P, (P,))
    run = ChainRun(P, P, [StepResult(P, P, "step", P, P, error=P)], P, P, P, {P: P}, P, 0.0, P)
    return {"chain run": run, "chain": chain, "chain list": ChainList([chain])}


@pytest.mark.parametrize("name", sorted(views()))
def test_static_views_escape_untrusted_text(name: str) -> None:
    assert_inert(views()[name]._repr_mimebundle_()["text/html"], name)


def test_report_training_and_dataset_pages_escape_untrusted_text() -> None:
    from cellops.kernels_lib.datasets.card import card_bundle

    card = {"rows": 1, "bad_count": 1, "format": P, "schema": {P: P}, "splits": {P: 1},
            "sources": [{"source": P, "split": P, "rows": 1, "sha256": P}],
            "duplicates": {"count": 0, "rows": []}, "label_balance": {P: {P: 1}}, "lengths": {"min": P},
            "pii": {"scanned": 0, "note": P}, "bad_rows": [{"where": P, "reason": P}], "description": P,
            "hash": "ab" * 32}
    assert_inert(card_bundle(P, card)["text/html"], "dataset card")
    r = runs()
    assert_inert(build_html(r, {P: {r[0]["id"]: 1.0, r[1]["id"]: 2.0}}), "run report")
    assert_inert(summary_html(job()), "finetune summary")


def _widget_html(widget: Any) -> list[str]:
    """Every HTML value inside an ipywidgets tree."""
    import ipywidgets as w

    out = [widget.value] if isinstance(widget, w.HTML) else []
    for child in getattr(widget, "children", ()):
        out += _widget_html(child)
    return out


def test_widgets_escape_errors_and_outputs(tmp_path: Path) -> None:
    from cellops.widgets.compare_grid import CompareGridView
    from cellops.widgets.feedback import FeedbackButtons, RunWithFeedback
    from cellops.widgets.training import TrainingDashboard

    buttons = FeedbackButtons(P)  # no such run: the error names it
    buttons.rate(1)
    assert buttons.rating is None
    assert_inert(buttons.status.value, "feedback error")

    run = views()["prompt run"]
    with_buttons = RunWithFeedback(run)
    assert_inert("".join(_widget_html(with_buttons.widget)), "run with feedback")

    result = grid()
    view = CompareGridView(result.columns, result.cases)
    for row in result.cells:
        for cell in row:
            view.update(cell)
    view.finish(result)
    assert_inert("".join(_widget_html(view.widget)), "live compare grid")

    events = tmp_path / "events.jsonl"
    lines = [{"t": 0, "kind": "start", "max_steps": 4}, {"t": 1, "kind": "sample", **job().samples[0]},
             {"t": 2, "kind": "done", "eval_loss_before": P, "loss": P}]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    dash_job = SimpleNamespace(**vars(job()), events_path=events, status="failed", stop=lambda: None)
    dash = TrainingDashboard(dash_job, poll_s=0.05)
    dash._thread.join(10)
    for part in ("header", "stats", "result"):
        assert_inert(getattr(dash, part).value, f"training dashboard {part}")
