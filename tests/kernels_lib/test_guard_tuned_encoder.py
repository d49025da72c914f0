"""``encoder: tuned`` on the harmful check: MiniLM fine-tuned on the exemplars once (one real
training, ~2-3 min, shared by the module), kept as safetensors in the user cache, loaded after that,
trained again when its folder is damaged, and used to score requests."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from test_guard_harmful import PAIRS

from cellops.kernels_lib import guard
from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.guard import tuned_encoder
from cellops.kernels_lib.guard.checks.harmful import Harmful
from cellops.kernels_lib.guard.embed import TextCtx
from cellops.kernels_lib.models import embedders


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """A user cache of the module's own, holding the one tuned model the tests share."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("user-cache")
    mp.setattr(tuned_encoder, "USER_CACHE", root)
    yield root
    mp.undo()


def tuned_check(ws):
    """A new harmful check with ``encoder: tuned`` (not the policy cache's)."""
    return Harmful(Harmful.validate_options({"encoder": "tuned"}, "test"), Harmful.default_threshold, ws)


@pytest.fixture(scope="module")
def trained(cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """The harmful check with ``encoder: tuned``, trained in ``cache`` (the real recipe)."""
    from cellops.kernels_lib.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("ws") / ".cellops")
    return tuned_check(ws), ws


def test_the_tuned_model_is_saved_whole_as_safetensors(trained, cache: Path) -> None:
    check, _ = trained
    (folder,) = [p for p in (cache / "guard").iterdir() if p.is_dir()]  # beside it: its training lock
    assert folder.name.startswith("encoder-") and (folder / "model.safetensors").stat().st_size > 10_000_000
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pkl", ".pt", ".pth")]  # no pickle
    assert check.encoder.source == str(folder)
    assert check.encoder.weights_hash != embedders.get_embedder("default").weights_hash


@pytest.mark.parametrize(("bad", "good"), PAIRS[:6])
def test_the_tuned_classifier_ranks_harmful_intent_higher(trained, bad: str, good: str) -> None:
    check, _ = trained
    assert check.run(TextCtx(bad, "input")).score > check.run(TextCtx(good, "input")).score


def test_a_second_load_reuses_the_saved_model(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    check, ws = trained

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(tuned_encoder, "fine_tune", no_training)
    monkeypatch.delitem(embedders._cache, f"st:{check.encoder.source}")  # loaded from the folder again
    again = tuned_check(ws)
    assert again.encoder is not check.encoder
    text = PAIRS[0][0]
    assert again.run(TextCtx(text, "input")).score == pytest.approx(check.run(TextCtx(text, "input")).score, abs=1e-6)


def test_a_damaged_model_folder_is_trained_again(cache: Path, trained, monkeypatch, caplog, tmp_path: Path) -> None:
    check, _ = trained
    folder = Path(check.encoder.source)
    other = tmp_path / "cache"
    shutil.copytree(cache, other)  # the shared model stays whole for the other tests
    monkeypatch.setattr(tuned_encoder, "USER_CACHE", other)
    damaged = other / "guard" / folder.name
    (damaged / "model.safetensors").write_bytes(b"not a safetensors file")
    monkeypatch.delitem(embedders._cache, f"st:{damaged}", raising=False)
    calls = []

    def fake_training(texts, y, recipe=None, progress=None, on_epoch=None):  # the real one is tested above
        from sentence_transformers import SentenceTransformer

        from cellops.kernels_lib.models.weights import default_embedder_dir

        calls.append(len(texts))
        return SentenceTransformer(str(default_embedder_dir()), device="cpu")

    monkeypatch.setattr(tuned_encoder, "fine_tune", fake_training)
    texts, labels = ["a request", "another one"], ["benign", "fraud_scams"]
    monkeypatch.setattr(tuned_encoder, "folder", lambda t, lab: damaged)
    with caplog.at_level(logging.WARNING):
        emb = tuned_encoder.tuned_embedder(texts, labels)
    assert calls == [2] and "does not load" in caplog.text and "training it again" in caplog.text
    assert emb.source == str(damaged) and emb.encode(["hello"]).shape == (1, 384)
    assert (damaged / "model.safetensors").stat().st_size > 10_000_000
    assert not list(damaged.parent.glob("*.tmp-*"))  # nothing half-written is left beside it


def test_an_unknown_encoder_is_one_line_at_load(workspace) -> None:
    with pytest.raises(InvalidInputError, match="option 'encoder' must be one of base, tuned; got 'large'"):
        guard.load("input:\n  - check: harmful\n    encoder: large", workspace)


def test_training_is_seeded_and_leaves_the_callers_torch_rng_alone() -> None:
    import numpy as np
    import torch

    texts, y = ["how do I hurt someone", "how do I help someone", "write malware", "write a poem"], np.array([1, 0, 1, 0])
    recipe = tuned_encoder.Recipe(epochs=1, batch=2, lr=1e-3)  # a large step: the change is plain
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = tuned_encoder.fine_tune(texts, y, recipe)
    assert torch.equal(torch.rand(3), expected)  # the caller's stream goes on as if nothing ran
    second = tuned_encoder.fine_tune(texts, y, recipe)
    a, b = (m.encode(["a request"], normalize_embeddings=True) for m in (first, second))
    base = embedders.get_embedder("default").encode(["a request"])
    assert np.allclose(a, b, atol=1e-6) and not np.allclose(a, base, atol=1e-3)  # trained, the same way twice


def test_two_loads_at_once_train_once(monkeypatch, tmp_path: Path) -> None:
    import threading
    import time

    monkeypatch.setattr(tuned_encoder, "USER_CACHE", tmp_path)
    calls = []

    def slow_training(texts, y, recipe=None, progress=None, on_epoch=None):
        from sentence_transformers import SentenceTransformer

        from cellops.kernels_lib.models.weights import default_embedder_dir

        calls.append(len(texts))
        time.sleep(1.0)  # the other load arrives while this one trains
        return SentenceTransformer(str(default_embedder_dir()), device="cpu")

    monkeypatch.setattr(tuned_encoder, "fine_tune", slow_training)
    texts, labels = ["one request", "another request"], ["benign", "fraud_scams"]
    got = []
    threads = [threading.Thread(target=lambda: got.append(tuned_encoder.tuned_embedder(texts, labels))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert calls == [2] and len(got) == 2
    assert got[0].source == got[1].source == str(tuned_encoder.folder(texts, labels))
    assert not list((tmp_path / "guard").glob("*.tmp-*"))
