"""`cellops replay RUN` on a prompt run and a rag ask: re-run from the record with the real
embedded model and compare; a record whose output was not what the model gives is flagged."""

from __future__ import annotations

import pytest

from cellops.kernels_lib import pipelines, prompts, rag


def _tamper(workspace, run_id: str, **changes: object) -> None:
    rec = workspace.get_run(run_id)["record"]
    workspace.update_run(run_id, **{k: v for k, v in changes.items() if k in rec})


@pytest.mark.slow
def test_prompt_and_rag_runs_replay_and_match(workspace) -> None:
    prompts.save("short", "Name one colour of the {{ thing }}.", params={"max_tokens": 8})
    r = prompts.run("short", {"thing": "sky"})
    rep = pipelines.replay(r.run_id)
    assert rep.matched, str(rep)
    assert [c.what for c in rep.checks] == ["weights", "blocked", "output"]
    assert "outputs match (3/3 checks)" in str(rep)
    assert workspace.list_runs("replay")[0]["record"]["of"] == r.run_id

    rag.build("facts", {"docs": [{"id": "moon", "text": "The Moon pulls the tides twice a day."},
                                 {"id": "bee", "text": "Bees make honey from flower nectar."}]},
              progress=False)
    prompts.save("cite", "{{ context }}\nQ: {{ question }}\nA:", params={"max_tokens": 10})
    a = rag.ask("facts", "What makes honey?", k=1, prompt="cite@1")
    rep = pipelines.replay(a.run_id)
    assert rep.matched, str(rep)
    passages = next(c for c in rep.checks if c.what == "passages")
    assert passages.recorded == passages.replayed and len(passages.recorded) == 1
    assert rep.replay_run_id and rep.replay_run_id != a.run_id

    _tamper(workspace, r.run_id, output=r.text + " (edited)")
    rep = pipelines.replay(r.run_id)
    assert not rep.matched and "outputs DIFFER" in str(rep)
    assert [c.what for c in rep.checks if not c.matched] == ["output"]
