"""Index builds across real processes: one build per name (a second fails naming the pid), a
build SIGKILLed twice keeps every group it checkpointed, and killed builds leave no folders.
Two builder processes in all: each loads the embedder, which is slow on a loaded machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cellops
from cellops.kernels_lib import rag
from cellops.kernels_lib.errors import WorkspaceError

SRC = str(Path(cellops.__file__).resolve().parents[1])
BUILDER = """
import os, signal, sys, time
from pathlib import Path
from cellops.kernels_lib import rag
from cellops.kernels_lib.rag import ingest

ingest.GROUP = 2  # tiny groups: each one is checkpointed on its own
mode, corpus = sys.argv[1], sys.argv[2]
first = []

def progress(done, total):
    first.append(done)
    print("progress", done, total, flush=True)
    if mode == "hold" and len(first) == 1:  # until the test has tried a second build
        while not Path(corpus + ".go").exists():
            time.sleep(0.05)
    if done - first[0] >= 2:  # SIGKILL right after one more group of 2 vectors is checkpointed
        os.kill(os.getpid(), signal.SIGKILL)

v = rag.build("kb", [corpus], progress=progress)
print("built", v.ref, v.embedded, v.reused, flush=True)
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    p = tmp_path / "facts.jsonl"
    facts = ["Otters hold hands while sleeping.", "Honey never spoils in sealed jars.",
             "Octopuses have three hearts.", "Bananas are berries botanically.",
             "A day on Venus outlasts its year.", "Sharks existed before trees.",
             "Wombat droppings are cube shaped.", "Hot water can freeze faster than cold."]
    p.write_text("".join(json.dumps({"_id": f"f{i}", "text": t}) + "\n" for i, t in enumerate(facts)))
    return p


def _builder(mode: str, corpus: Path, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "CELLOPS_HOME": str(home), "CELLOPS_WANDB": "off"}
    return subprocess.Popen([sys.executable, "-c", BUILDER, mode, str(corpus)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_one_build_per_name_and_two_kills_lose_nothing(corpus: Path, workspace) -> None:
    staging = workspace.artifacts / ".staging"
    first = _builder("hold", corpus, workspace.root)
    assert first.stdout.readline().startswith("progress 0 8"), first.stderr.read()
    with pytest.raises(WorkspaceError, match=rf"index kb is being built by pid {first.pid}\b"):
        rag.build("kb", [str(corpus)], progress=False, workspace=workspace)
    Path(str(corpus) + ".go").touch()  # the first build goes on (its folder untouched) ...
    out, err = first.communicate(timeout=300)
    assert first.returncode == -9 and "progress 2 8" in out, err  # ... and is killed
    assert len(list(staging.iterdir())) == 1
    second = _builder("kill", corpus, workspace.root)
    out, err = second.communicate(timeout=300)
    assert second.returncode == -9 and out.startswith("progress 2 8\nprogress 4 8"), err
    assert len(list(staging.iterdir())) == 1  # one folder, carried from kill to kill
    seen: list[int] = []
    v = rag.build("kb", [str(corpus)], progress=lambda done, total: seen.append(done), workspace=workspace)
    assert seen[0] == 4 and (v.ref, v.embedded, v.reused) == ("kb@1", 4, 4)  # both kills' groups kept
    assert not any(staging.iterdir()) and workspace.get_state("rag.building.kb") is None
    assert rag.search("kb", "how many hearts does an octopus have", k=1)[0].doc_id == "f2"


def test_staging_folders_of_dead_processes_are_swept(workspace, tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = workspace.staging_dir()
    dead = live.with_name(live.name.replace(f".{os.getpid()}.", f".{gone.pid}.", 1))
    kept = live.with_name(live.name.replace(f".{os.getpid()}.", f".{gone.pid}.", 1) + "k")
    for d in (dead, kept):
        (d / "partial").mkdir(parents=True)
        (d / "partial" / "00000.npy").write_bytes(b"x")
    workspace.set_state("rag.building.somename", str(kept))  # a killed build waiting to resume
    fresh = workspace.staging_dir()
    assert not dead.exists() and live.is_dir() and kept.is_dir() and fresh.is_dir()
