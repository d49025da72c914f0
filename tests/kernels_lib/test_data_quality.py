"""Synthetic data (self-instruct), edge-case suites (perturb) and the model card's evaluation and
risk section, on the embedded SmolLM2-135M with tiny n and max_tokens."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import pytest

from cellops.kernels_lib import datasets, prompts
from cellops.kernels_lib.datasets import synth
from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.prompts.cases import load_cases

P = importlib.import_module("cellops.kernels_lib.prompts.perturb")  # the module (prompts.perturb is the function)
SEED_TASKS = [  # a tiny seed set written for the test (self-instruct style: varied task types)
    "Name three primary colours.", "Translate 'good morning' into Spanish.", "Write a haiku about the sea.",
    "Suggest a title for a blog post about saving money.", "Explain what photosynthesis is to a child.",
    "Give me a synonym for 'happy'.", "Write a short thank-you note to a teacher.",
    "Classify the sentiment of: 'The film was far too long.'", "Convert 5 kilometres to miles.",
    "List four animals that live in the desert.", "Rewrite this sentence in the passive voice: The cat ate the fish.",
    "What is the opposite of 'ancient'?", "Create a shopping list for a picnic.",
    "Summarize the plot of Cinderella in one sentence.", "Write a riddle about a clock.",
]
SEEDS = [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "(answer)"}]}
         for t in SEED_TASKS[:-1]] + [{"prompt": SEED_TASKS[-1], "completion": "(answer)"}]
CASES = [
    {"description": "capital", "vars": {"question": "What is the capital of France?"},
     "assert": [{"type": "icontains", "value": "paris"}]},
    {"description": "short", "vars": {"question": "Say the word yes."},
     "assert": [{"type": "max-length", "value": 400}]},
]


# -- synth ---------------------------------------------------------------------------------------
def test_rouge_l_and_task_parsing() -> None:
    t = synth.tokens
    assert synth.rouge_l(t("Name three primary colours."), t("name three primary colors")) == pytest.approx(0.75)
    assert synth.rouge_l(t("a b c"), t("x y")) == 0.0
    assert synth.parse_task("\n Task 5: Write a poem about cats.\nAnswer: ...") == "Write a poem about cats."
    assert synth.parse_task("  \n ") is None


def test_empty_seed_set_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "seeds.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"the seed set .*seeds.jsonl has no tasks"):
        datasets.synthesize("s", seed=str(empty), n=2)
    with pytest.raises(InvalidInputError, match="has no tasks"):
        datasets.synthesize("s", seed=[{"messages": []}], n=2)
    with pytest.raises(InvalidInputError, match="n must be a positive"):
        datasets.synthesize("s", seed=SEEDS, n=0)


@pytest.mark.slow
def test_synthesize_on_the_embedded_model_records_generator_and_filters(workspace) -> None:
    """SmolLM2-135M mostly copies one of the example tasks; the near-duplicate filter must catch
    every copy, and whatever is kept lands on a card that accounts for every attempt."""
    import re

    datasets.save("seeds", SEEDS)
    seen: list[tuple[int, int]] = []
    try:
        v = datasets.synthesize("synthetic", seed="seeds@1", n=2, max_tokens=24, max_attempts=6,
                                progress=lambda done, total: seen.append((done, total)))
    except InvalidInputError as e:  # nothing new came out: one line with every filter's count
        counts = dict((k, int(n)) for k, n in re.findall(r"(\w+) (\d+)", str(e).split("rejected: ")[1]))
        assert str(e).startswith("none of 6 generations passed the filters") and sum(counts.values()) == 6
        assert len(seen) == 6 and seen[-1] == (0, 2) and "synthetic" not in workspace.names("dataset")
        return
    card = v.card
    s = card["synthetic"]
    assert v.format == "chat" and card["rows"] == s["kept"] and 1 <= s["kept"] <= 2
    assert s["model"] == "default" and len(s["model_hash"]) >= 16 and s["prompt"] == "synth-self-instruct@1"
    assert s["seed_dataset"] == "dataset seeds@1" and s["seed_tasks"] == len(SEED_TASKS)
    assert set(s["rejected"]) == {"format", "length", "near_duplicate", "guard"}
    assert s["attempts"] == s["kept"] + sum(s["rejected"].values()) and s["attempts"] <= 6
    assert len(seen) == s["attempts"] and seen[-1] == (s["kept"], 2)
    for row in v.records():  # kept tasks are no near-copies of a seed
        task = synth.tokens(row["messages"][0]["content"])
        assert all(synth.rouge_l(task, synth.tokens(x)) < synth.ROUGE_THRESHOLD for x in SEED_TASKS)
    text = v._repr_mimebundle_()["text/plain"]
    assert "generator: default" in text and "near_duplicate rejected" in text
    assert workspace.get_run(card["run"])["record"]["synth_prompt"] == "synth-self-instruct@1"


def test_synthesize_keeps_new_tasks_and_rejects_copies(workspace, monkeypatch) -> None:
    """The loop and the card with a scripted generator (the real-model test above may keep none)."""
    from cellops.kernels_lib import models
    from cellops.kernels_lib.models.base import Generation

    script = iter(["Task 3: Name three primary colours.", "Write a limerick about a cat called Tom.",
                   "There once was a cat called Tom...", "", "Describe the smell of rain in two words.",
                   "Earthy, fresh."])

    class Scripted:
        uri = "scripted"

        def generate(self, messages, params, on_token=None):
            return Generation(next(script), "scripted", 1, 1, 0.01)

        def weights_hash(self):
            return "0" * 64

    monkeypatch.setattr(models, "get_llm", lambda uri, ws=None: Scripted())
    v = datasets.synthesize("syn", seed=SEEDS, n=2, max_attempts=6)
    s = v.card["synthetic"]
    assert [r["messages"][0]["content"] for r in v.records()] == [
        "Write a limerick about a cat called Tom.", "Describe the smell of rain in two words."]
    assert s["rejected"] == {"format": 1, "length": 0, "near_duplicate": 1, "guard": 0} and s["attempts"] == 4


# -- perturb -------------------------------------------------------------------------------------
def test_perturbations_are_deterministic_and_keep_assertions() -> None:
    cases = load_cases(CASES)
    for kind in ("typos", "case", "whitespace", "negation", "injection", "pii", "unicode", "long"):
        a, b = P.derive(cases, kind, seed=3), P.derive(cases, kind, seed=3)
        assert [c.vars for c in a] == [c.vars for c in b], kind
        assert a[0].vars["question"] != cases[0].vars["question"], kind
        assert a[0].asserts == cases[0].asserts
    assert P.derive(cases, "typos", 3)[0].vars != P.derive(cases, "typos", 4)[0].vars
    assert P.INJECTION in P.derive(cases, "injection", 0)[0].vars["question"]
    assert "\u200b" in P.derive(cases, "unicode", 0)[0].vars["question"] or \
        any(g in P.derive(cases, "unicode", 0)[0].vars["question"] for g in P.HOMOGLYPHS.values())


def test_unknown_kind_is_one_line_listing_the_valid_ones() -> None:
    prompts.save("qa", "Q: {{ question }}\nA:")
    with pytest.raises(InvalidInputError, match=r"unknown perturbation kind 'typo'; valid: typos, case, "
                                                 r"whitespace, paraphrase, negation, injection, pii, unicode, long"):
        prompts.perturb("qa", CASES, kinds="typo,case")
    with pytest.raises(InvalidInputError, match="none of the 1 cases has an 'assert' list"):
        prompts.perturb("qa", [{"question": "x"}], kinds="case")


@pytest.mark.slow
def test_perturb_runs_the_suite_and_the_guard_reports_payload_kinds(workspace) -> None:
    from cellops.kernels_lib import guard

    prompts.save("qa", "Answer briefly. {{ question }}", params={"max_tokens": 12})
    guard.on("default", workspace)
    df = prompts.perturb("qa", CASES, kinds="case,paraphrase,injection,pii")
    assert list(df["kind"]) == ["case", "paraphrase", "injection", "pii"]
    assert (df["cases"] == 2).all() and df["clean_pass_rate"].nunique() == 1
    assert df["pass_rate"].between(0, 1).all()
    caught = dict(zip(df["kind"], df["guard_caught"], strict=True))
    assert caught["pii"] == 1.0 and caught["injection"] == 1.0  # default redacts PII, blocks injections
    assert pd_isna(caught["case"]) and df.attrs["guard_policy"] == "default"
    para = df.set_index("kind").loc["paraphrase", "example"]
    assert para and para != CASES[0]["vars"]["question"]
    run = workspace.get_run(df.attrs["run_id"])
    assert run["kind"] == "prompt_perturb" and run["record"]["table"][0]["kind"] == "case"
    again = prompts.perturb("qa", CASES, kinds="case,paraphrase,injection,pii")  # same seed, same suite
    assert list(again["example"]) == list(df["example"])


def pd_isna(v: object) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


# -- model card ----------------------------------------------------------------------------------
def register_gguf(ws, name: str) -> str:
    """A registered model version holding the embedded GGUF (what a fine-tune export looks like)."""
    from cellops.kernels_lib.models.weights import default_gguf

    staging = ws.staging_dir()
    try:
        os.link(default_gguf(), staging / "model.gguf")
    except OSError:
        shutil.copy(default_gguf(), staging / "model.gguf")
    v, _ = ws.save_version("model", name, {"format": "gguf", "file": "model.gguf"}, artifact=staging)
    return v.ref


def test_redteam_set_covers_categories() -> None:
    from cellops.kernels_lib.train.model_card import redteam_prompts

    rows = redteam_prompts()
    cats = {r["category"] for r in rows}
    assert len(rows) == 40 and len(cats) == 8 and len({r["id"] for r in rows}) == 40


@pytest.mark.slow
def test_model_card_gains_tests_robustness_and_redteam(workspace) -> None:
    from cellops.kernels_lib import models

    ref = register_gguf(workspace, "smol")
    prompts.save("qa", "Answer briefly. {{ question }}", params={"max_tokens": 12})
    prompts.test("qa", CASES, model=ref)
    prompts.perturb("qa", CASES, kinds="case,typos", model=ref)
    prompts.test("qa", CASES, model="default")  # another model: not on this card
    card = models.evaluate_card(ref, limit=8, max_tokens=24)
    assert [s["model"] for s in card.suites] == [ref] and card.suites[0]["total"] == 2
    assert [k["kind"] for k in card.robustness[0]["table"]] == ["case", "typos"]
    rt = card.redteam
    assert rt["n"] == 8 and rt["set_size"] == 40 and len(rt["categories"]) == 8
    assert rt["policy"] == "strict" and 0 <= rt["flagged"] <= 8 and rt["date"]
    assert models.card(ref).redteam["set_hash"] == rt["set_hash"]  # read back without running
    bundle = card._repr_mimebundle_()
    assert "red-team guard evaluation" in bundle["text/plain"] and "test suites" in bundle["text/plain"]


def test_model_card_html_is_escaped() -> None:
    from cellops.kernels_lib.train.model_card import ModelCard

    rt = {"n": 1, "flagged": 0, "refused": 0, "policy": "strict", "set_hash": "ab" * 32, "date": "2026-01-01",
          "categories": {"fraud": {"n": 1, "flagged": 0, "refused": 0, "example": "<script>alert(1)</script>"}}}
    html = ModelCard("m@1", {}, redteam=rt)._repr_mimebundle_()["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html
