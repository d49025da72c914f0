"""A real third-party plugin: a package written here, installed by pip into a throwaway venv
(which sees the shared venv through a .pth file), that registers a model backend, a loader and a
guard check through entry points; a real shell in that venv then uses all three from the magics."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

import cellops

CELLOPS_SRC = str(Path(cellops.__file__).parents[1])  # this checkout's cellops, in the plugin venv too
PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "cellops-testplug"
version = "0.1"

[project.entry-points."cellops.models"]
myplug = "cellops_testplug:make_llm"

[project.entry-points."cellops.loaders"]
".note" = "cellops_testplug:load_note"

[project.entry-points."cellops.guard_checks"]
no_bananas = "cellops_testplug:NoBananas"

[project.entry-points."cellops.trackers"]
filetrack = "cellops_testplug:tracker"

[project.entry-points."cellops.indexes"]
flat = "cellops_testplug:FLAT"
"""

MODULE = '''\
"""A cellops plugin: a model backend (echo), a loader (.note files), a guard check, a tracker
(JSON lines into $TESTPLUG_TRACK) and a dense index type (exact search, like brute)."""
import json
import os
from pathlib import Path

from cellops.kernels_lib.guard.checks.base import Check
from cellops.kernels_lib.guard.report import Verdict
from cellops.kernels_lib.models.base import Generation
from cellops.kernels_lib.rag.ann import DenseIndex
from cellops.kernels_lib.rag.indexes import IndexType
from cellops.kernels_lib.rag.loaders import Document


class EchoLLM:
    supports_concurrency = False

    def __init__(self, spec, uri):
        self.spec, self.uri = spec, uri

    def weights_hash(self):
        return "echo-" + self.spec

    def generate(self, messages, params, on_token=None):
        text = f"[{self.spec}] " + messages[-1]["content"][::-1]
        if on_token is not None:
            on_token(text)
        return Generation(text, self.uri, 1, len(text.split()), 0.001)


def make_llm(spec, uri, ws):
    return EchoLLM(spec, uri)


def load_note(path: Path, source: str):
    # a .note file: "title: ...", then the body; the loader keeps only the body
    title, _, body = path.read_text().partition("\\n")
    return [Document(source, title.removeprefix("title: ").strip(), body.strip(), "text")]


class NoBananas(Check):
    name = "no_bananas"
    help = "blocks any mention of bananas"

    def run(self, ctx):
        hit = "banana" in ctx.text.lower()
        return Verdict(1.0 if hit else 0.0, hit, "BANANA" if hit else "", reason="bananas")


class FileTracker:
    """Each call one JSON line in $TESTPLUG_TRACK: {"op": ..., "pid": ..., ...}."""
    run_id = error = None

    def _write(self, op, **fields):
        with open(os.environ["TESTPLUG_TRACK"], "a") as f:
            f.write(json.dumps({"op": op, "pid": os.getpid(), **fields}) + "\\n")

    def start(self, root, job_type="notebook", config=None):
        self.run_id = "file-" + job_type
        self._write("start", job_type=job_type, config=sorted(config or {}))
        return self.run_id

    def log(self, data, tables=None):
        self._write("log", data={k: v for k, v in data.items() if isinstance(v, (int, float, str))},
                    tables=sorted(tables or {}))

    def summary(self, data):
        self._write("summary", data=data)

    def flush(self, timeout=120.0):
        pass

    def finish(self):
        self._write("finish")


tracker = FileTracker()
FLAT = IndexType("dense", lambda v, folder, cfg: None, lambda v, folder, cfg: DenseIndex(v, cfg))
'''

SCRIPT = r'''
import json, sys
from IPython.testing.globalipapp import get_ipython
ip = get_ipython()
ip.run_line_magic("load_ext", "cellops")
out = {}
r = ip.run_cell_magic("prompt", "greet --model myplug:v1 -o t_r", "hello plugin")
out["prompt"] = [r.text, r.version, r.run_id]
v = ip.run_cell_magic("rag", "build kb -o t_v", sys.argv[1])
out["rag"] = [v.ref, v.counts["files"], v.skipped]
df = ip.run_line_magic("rag", "search kb quarterly figures -k 1")
out["hit"] = [df.iloc[0]["doc_id"], df.iloc[0]["text"]]
ip.run_cell_magic("guard", "fruit", "input:\n  - check: no_bananas\n    action: block\n")
rep = ip.run_line_magic("guard", "check --policy fruit I would like two bananas")
ok = ip.run_line_magic("guard", "check --policy fruit I would like two apples")
out["guard"] = [rep.allowed, [f.check for f in rep.findings], ok.allowed]
from cellops.kernels_lib.rag.indexes import index_type
from cellops.kernels_lib.workspace import get_workspace
rec = get_workspace().get_run(r.run_id)["record"]
out["index"] = [index_type("flat", "dense").part, rec["tracker"], rec["tracker_run_id"]]
# %config beats CELLOPS_TRACKER (W&B is off here: the run cites no tracker); --tracker beats both
ip.run_line_magic("config", "Cellops.tracker = 'nope'")  # one logged line; the value stays
ip.run_line_magic("config", "Cellops.tracker = 'wandb'")
w = ip.run_cell_magic("prompt", "greet --model myplug:v1", "hello wandb")
out["wandb"] = [get_workspace().get_run(w.run_id)["record"].get(k) for k in ("tracker", "tracker_run_id")]
ip.run_cell_magic("finetune", f"tplug --data {sys.argv[2]} --max-steps 2 --batch 1 --max-len 32 "
                  "--eval-split 0 --save-every 0 --tracker filetrack -o t_job", "samples: 0\n")
job = ip.user_ns["t_job"]
card = json.loads((get_workspace().artifact_dir("model", "tplug", 1) / "card.json").read_text())
rec = get_workspace().get_run(job.run_id)["record"]
out["finetune"] = [job.status, job.model, rec["tracker"], rec["tracker_run_id"], card["tracker"],
                   card["tracker_run_id"], [e.get("grad_norm") for e in job.events() if e["kind"] == "log"]]
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv (no pip of its own) that sees the shared venv, with the plugin pip-installed."""
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    (src / "cellops_testplug").mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "cellops_testplug" / "__init__.py").write_text(MODULE)
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the shared venv's packages (cellops's dependencies, pip, setuptools) come in through a .pth
    Path(site, "shared-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", str(src)], check=True, capture_output=True, timeout=300)
    return py


def test_plugin_is_found_and_used_from_the_magics(plugin_python: Path, tmp_path: Path, zorbia_data: Path) -> None:
    docs = tmp_path / "notes"
    docs.mkdir()
    (docs / "q3.note").write_text("title: Q3-REPORT\nQuarterly figures rose by nine percent.\n")
    (docs / "misc.txt").write_text("Penguins live in the southern hemisphere.")
    track = tmp_path / "track.jsonl"
    env = os.environ | {"CELLOPS_HOME": str(tmp_path / ".cellops"), "CELLOPS_WANDB": "off",
                        "CELLOPS_TRACKER": "filetrack", "TESTPLUG_TRACK": str(track),
                        "PYTHONPATH": os.pathsep.join([CELLOPS_SRC, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([plugin_python, "-c", SCRIPT, str(docs), str(zorbia_data)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[0].removeprefix("RESULT "))
    assert out["prompt"][:2] == ["[v1] nigulp olleh", "greet@1"]
    assert out["rag"] == ["kb@1", 2, []]
    assert out["hit"] == ["Q3-REPORT", "Quarterly figures rose by nine percent."]
    assert out["guard"] == [False, ["no_bananas"], True]
    # the tracker CELLOPS_TRACKER names got the prompt run (and the record cites its run id)
    logged = [json.loads(ln) for ln in track.read_text().splitlines()]
    kernel = [e for e in logged if e["pid"] == logged[0]["pid"]]
    assert any(e["op"] == "log" and e["data"].get("prompt/prompt") == "greet@1"
               and e["data"]["prompt/run_id"] == out["prompt"][2] for e in kernel)
    assert out["index"] == ["dense", "filetrack", "file-notebook"]
    assert "unknown tracker 'nope'; available: " in proc.stderr + proc.stdout
    assert out["wandb"] == [None, None]
    # the fine-tune's rank 0 (another process) logged every step to the plugin and closed it
    status, model, rec_tracker, rec_id, card_tracker, card_id, grad_norms = out["finetune"]
    assert (status, model, rec_tracker, rec_id, card_tracker, card_id) == (
        "done", "tplug@1", "filetrack", "file-finetune", "filetrack", "file-finetune")
    worker = [e for e in logged if e["pid"] != logged[0]["pid"]]
    assert worker[0]["op"] == "start" and worker[0]["job_type"] == "finetune" and "max_steps" in worker[0]["config"]
    steps = [e["data"] for e in worker if e["op"] == "log" and "train/loss" in e["data"]]
    assert [s["train/global_step"] for s in steps] == [1, 2]
    assert all(s["train/grad_norm"] > 0 for s in steps) and grad_norms == [s["train/grad_norm"] for s in steps]
    assert [e["op"] for e in worker[-3:]] == ["log", "summary", "finish"] and worker[-3]["tables"] == ["samples"]
    assert worker[-2]["data"]["steps"] == 2


def test_plugins_are_not_seen_without_the_install() -> None:
    """The same names in this venv (plugin not installed): one line listing what is available."""
    from cellops.kernels_lib.errors import NotFoundError
    from cellops.kernels_lib.models import backends
    from cellops.kernels_lib.rag.indexes import indexes
    from cellops.kernels_lib.rag.loaders import loaders
    from cellops.kernels_lib.tracking import trackers

    assert "myplug" not in backends and ".note" not in loaders and "llamacpp" in backends
    assert "filetrack" not in trackers and "wandb" in trackers
    assert "flat" not in indexes and {"brute", "scann", "bm25"} <= set(indexes.names())
    with pytest.raises(NotFoundError, match="unknown model backend 'myplug'; available: .*llamacpp"):
        backends.get("myplug")
    from cellops.kernels_lib.models import get_embedder

    with pytest.raises(NotFoundError, match="unknown embedder 'myemb:x'; use default, st:<...>"):
        get_embedder("myemb:x")
