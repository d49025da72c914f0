"""More views in a real JupyterLab: the RAG answer with its cited passages, and the live training
dashboard following a fine-tuning run's event file while the page stays open."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_sidebar import open_and_run_all, output, screenshot, write_notebook

pytestmark = [pytest.mark.ui, pytest.mark.slow]

FACTS = [
    "Paris is the capital of France and sits on the river Seine.",
    "The Nile is the longest river in Africa and flows into the Mediterranean Sea.",
    "Mount Fuji is the highest mountain in Japan.",
]
ANSWER_PROMPT = """%%prompt short-answer --max-tokens 24 --temperature 0 --no-run
Sources:
{% for p in passages %}[{{ p.n }}] {{ p.text }}
{% endfor %}
Question: {{ question }}
Answer in one sentence, citing sources as [n]:"""
QUESTION = "What is the capital of France?"

CELLS = [
    "%load_ext cellops",
    f"facts = {FACTS!r}",
    "%%rag build facts\nfacts",
    ANSWER_PROMPT,
    f"%%rag ask facts -k 2 --prompt short-answer@1\n{QUESTION}",
    "%finetune attach tiny",
]
RAG_ASK, ATTACH = 4, 5


def wait_cell_text(page, n: int, needle: str, timeout: int = 60_000) -> None:
    """Wait until cell ``n``'s output shows ``needle`` (no reload: the page only gets updates)."""
    page.wait_for_function(
        """([n, needle]) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[n];
                              const o = c && c.querySelector('.jp-Cell-outputArea');
                              return o && o.innerText.includes(needle); }""",
        arg=[n, needle], timeout=timeout)


def make_run_folder(root: Path, name: str) -> tuple[Path, subprocess.Popen]:
    """A fine-tuning run folder as ``train.launch`` leaves it (run.json, run record, plan and
    launch events, supervisor.pid), with a stand-in supervisor process: an idle Python whose
    command line names the run folder, so ``Job.alive`` holds while the test writes the events
    the training worker would write. The worker itself is covered by the fine-tuning tests."""
    from cellops.kernels_lib.train import events
    from cellops.kernels_lib.train.launch import RUNS, runs_dir
    from cellops.kernels_lib.workspace import get_workspace

    ws = get_workspace(root / ".cellops")
    run_id = uuid.uuid4().hex[:12]
    run_dir = runs_dir(ws, name) / run_id
    run_dir.mkdir(parents=True)
    plan = {"stage": 0, "reason": "ZeRO-0 on 1 CPU process: the model fits", "world": 1, "nodes": 1,
            "device": "cpu", "notes": []}
    config = {"name": name, "base": "default", "method": "lora", "max_steps": 4, "procs": 1,
              "save_every": 0}
    spec = {"name": name, "workspace": str(ws.root), "run_dir": str(run_dir), "config": config,
            "plan": plan, "base_uri": "default", "data_hash": "0" * 16, "n_train": 8, "n_eval": 2,
            "run_id": run_id}
    (run_dir / "run.json").write_text(json.dumps(spec, indent=1))
    ws.record_run(RUNS, {k: spec[k] for k in ("config", "plan", "base_uri", "data_hash", "run_dir",
                                             "n_train", "n_eval")},
                  name=name, status="running", run_id=run_id)
    events.append(run_dir / "events.jsonl", "plan", zero=0, reason=plan["reason"], notes=[],
                  world=1, device="cpu", n_train=8, n_eval=2, data_hash=spec["data_hash"], base="default")
    events.append(run_dir / "events.jsonl", "launch", resume=False, port=0, cmd=[])
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", str(run_dir)],
                            start_new_session=True, stdin=subprocess.DEVNULL)
    (run_dir / "supervisor.pid").write_text(str(proc.pid))
    return run_dir, proc


def bar_state(page, n: int) -> dict:
    """The ipywidgets IntProgress of cell ``n``: its label, filled percentage and bar classes."""
    return page.evaluate(
        """(n) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[n];
                    const p = c.querySelector('.widget-hprogress');
                    const bar = p.querySelector('.progress-bar');
                    return {label: p.querySelector('.widget-label').innerText,
                            width: parseFloat(bar.style.width || '0'),
                            classes: bar.className}; }""", n)


def test_rag_answer_and_training_dashboard(lab, page, tmp_path):
    t0 = time.monotonic()
    run_dir, supervisor = make_run_folder(lab.root, "tiny")
    ev_path = run_dir / "events.jsonl"
    try:
        from cellops.kernels_lib.train import events

        write_notebook(lab.root / "more.ipynb", *CELLS)
        open_and_run_all(lab, page, "more.ipynb")

        # %%rag ask: the streamed answer is replaced by the answer view with its passages
        ans = output(page, RAG_ASK).locator(".cellops table").first  # the passages; the folded
        ans.wait_for(timeout=240_000)  # trace waterfall below it has tables of its own
        view = output(page, RAG_ASK).locator(".cellops").first
        text = view.inner_text()
        assert QUESTION in text and "facts@1" in text and "short-answer@1" in text
        answer = view.locator("p").first.inner_text().strip()
        assert answer, "the answer paragraph is empty"
        rows = view.locator("table").first.locator("tbody tr")
        assert rows.count() == 2  # -k 2
        scores = []
        for i in range(2):
            cells = rows.nth(i).locator("td")
            assert cells.nth(0).inner_text().strip() == f"[{i + 1}]"
            assert re.fullmatch(r"-?\d\.\d{3}", cells.nth(1).inner_text().strip())
            scores.append(float(cells.nth(1).inner_text()))
            assert re.search(r"facts\[\d\]", cells.nth(3).inner_text())
        assert scores[0] >= scores[1]  # ranked by score
        # the embedder puts the Paris passage first for this question
        assert "facts[0]" in rows.nth(0).locator("td").nth(3).inner_text()
        # and the answer (about Paris) cites it, by [n] or by overlap
        assert rows.nth(0).locator("td").nth(2).inner_text().strip() in ("cited", "inferred")
        rows.nth(0).locator("summary").click()  # the full passage unfolds
        assert "river Seine" in rows.nth(0).locator("details").inner_text()
        screenshot(page, tmp_path, "rag-answer")

        # %finetune attach: the dashboard is live; it follows events appended from here
        dash = output(page, ATTACH).locator(".widget-vbox").first
        dash.wait_for(timeout=240_000)
        assert "finetune tiny" in dash.inner_text() and run_dir.name in dash.inner_text()
        wait_cell_text(page, ATTACH, "step 0/?")
        assert bar_state(page, ATTACH)["label"] == "starting"

        events.append(ev_path, "start", step=0, max_steps=4, world=1)
        events.append(ev_path, "eval", step=0, eval_loss=2.75, phase="before")
        events.append(ev_path, "log", step=1, loss=2.5, lr=1e-4, tokens_seen=256,
                      tokens_per_s=512.0, eta_s=90.0, elapsed_s=1.0)
        wait_cell_text(page, ATTACH, "step 1/4  loss 2.5000")
        wait_cell_text(page, ATTACH, "ETA 1m30s")
        state = bar_state(page, ATTACH)
        assert state["label"] == "running" and 20 <= state["width"] <= 30  # 1 of 4 steps
        assert "progress-bar-info" in state["classes"]
        assert dash.locator("svg polyline").count() == 1  # the loss curve is drawn
        wait_cell_text(page, ATTACH, "eval loss before 2.7500")

        events.append(ev_path, "log", step=3, loss=1.25, lr=1e-4, tokens_seen=768,
                      tokens_per_s=640.0, eta_s=12.0, elapsed_s=3.0)
        wait_cell_text(page, ATTACH, "step 3/4  loss 1.2500")
        assert 70 <= bar_state(page, ATTACH)["width"] <= 80
        assert "step 1/4" not in dash.inner_text()  # updated in place, not appended
        dash.scroll_into_view_if_needed()
        screenshot(page, tmp_path, "training-running")

        events.append(ev_path, "log", step=4, loss=1.0, lr=1e-4, tokens_seen=1024,
                      tokens_per_s=640.0, eta_s=0.0, elapsed_s=4.0)
        events.append(ev_path, "eval", step=4, eval_loss=1.5, phase="after")
        events.append(ev_path, "done", model="tiny@1", train_loss=1.6, eval_loss_before=2.75,
                      eval_loss_after=1.5)
        wait_cell_text(page, ATTACH, "after 1.5000")
        page.wait_for_function(
            f"""() => {{ const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[{ATTACH}];
                       return c.querySelector('.widget-hprogress .widget-label').innerText === 'done'
                              && c.querySelector('.jupyter-widgets button').disabled; }}""",
            timeout=30_000)
        state = bar_state(page, ATTACH)
        assert state["width"] == 100 and "progress-bar-success" in state["classes"]
        assert "tiny@1" in dash.inner_text()

        body = page.locator(".jp-Notebook").inner_text()
        assert "Error displaying widget" not in body and "Traceback" not in body
        assert not page.errors, page.errors  # type: ignore[attr-defined]
        screenshot(page, tmp_path, "training-done")
        print(f"test body: {time.monotonic() - t0:.1f} s")
    finally:
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait()
