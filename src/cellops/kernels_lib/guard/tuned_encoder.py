"""MiniLM fine-tuned on the harmful check's exemplars: the ``encoder: tuned`` option.

The harmful classifier reads frozen MiniLM embeddings, which place requests by topic more than by
intent ("write ransomware" next to "explain how ransomware is detected"). Fine-tuning the encoder
itself on the exemplars (a linear head on the mean-pooled, normalised embedding, class-weighted
binary cross-entropy, every weight trained; SetFit-like without the pair loss) moves intent into
the embedding: on the JailbreakBench dev rows the classifier's AUC goes from 0.84 to 0.89 on both
halves (docs/guard.md, benchmarks/bench_guard_encoder.py).

The tuned model is trained once per machine and set of exemplars (~2-3 min on 2 cores, with a
progress bar), saved as a sentence-transformers folder with safetensors weights only in the user
cache (``~/.cache/cellops/guard/encoder-<key>/``; the key covers the base weights, the exemplars
and the recipe), and then loaded like any ``st:`` embedder (ONNX Runtime for single texts). The
folder appears whole or not at all (written beside it, then renamed); a folder that no longer
loads is trained again. One process trains a given model at a time: others wait for it (a file
lock), then load what it saved.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..models.weights import USER_CACHE
from .embed import _digest

log = logging.getLogger(__name__)
_THREAD_LOCK = threading.Lock()  # see _training_lock


@dataclass(frozen=True)
class Recipe:
    epochs: int = 3
    lr: float = 3e-5
    batch: int = 32
    max_tokens: int = 64  # every exemplar fits; longer texts are checked in segments anyway
    seed: int = 0
    head_scale: float = 10.0  # the head reads unit-norm embeddings: scaled so its logits move early


RECIPE = Recipe()
FORMAT = 1  # bump when the saved folder's layout or the training code changes meaning


def fine_tune(texts: Sequence[str], y: np.ndarray, recipe: Recipe | None = None, progress: str | None = None,
              on_epoch: Callable[[int, Any], None] | None = None) -> Any:
    """A SentenceTransformer (the packaged MiniLM) trained end to end to tell ``y == 1`` texts from
    ``y == 0`` ones, by ``recipe`` (default RECIPE). ``progress``: a line printed above a progress
    bar on stderr; ``on_epoch(n, model)`` after each epoch (a benchmark scores the epochs)."""
    recipe = recipe or RECIPE
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    with torch.random.fork_rng():  # seeded (head, dropout), and the caller's torch RNG is left as it was
        torch.manual_seed(recipe.seed)
        return _train(texts, y, recipe, progress, on_epoch)


def _train(texts: Sequence[str], y: np.ndarray, recipe: Recipe, progress: str | None,
           on_epoch: Callable[[int, Any], None] | None) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer
    from tqdm.auto import tqdm

    from ..models.weights import default_embedder_dir

    rng = random.Random(recipe.seed)
    st = SentenceTransformer(str(default_embedder_dir()), device="cpu")
    tok, enc = st.tokenizer, st[0].auto_model
    head = torch.nn.Linear(enc.config.hidden_size, 1)
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=recipe.lr, weight_decay=0.01)
    y = np.asarray(y, dtype=np.float32)
    pos_weight = torch.tensor(float((y == 0).sum() / max((y == 1).sum(), 1)))
    texts = list(texts)

    def embed(batch: list[str]) -> Any:
        b = tok(batch, padding=True, truncation=True, max_length=recipe.max_tokens, return_tensors="pt")
        mask = b["attention_mask"].unsqueeze(-1).float()
        pooled = (enc(**b).last_hidden_state * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1)

    steps = recipe.epochs * -(-len(texts) // recipe.batch)
    if progress:
        print(progress, file=sys.stderr, flush=True)
    bar = tqdm(total=steps, desc="tuning the encoder", unit="batch", disable=not progress, file=sys.stderr)
    for epoch in range(1, recipe.epochs + 1):
        enc.train()
        order = list(range(len(texts)))
        rng.shuffle(order)
        for i in range(0, len(order), recipe.batch):
            idx = order[i:i + recipe.batch]
            logits = head(embed([texts[j] for j in idx]) * recipe.head_scale).squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.from_numpy(y[idx]), pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
        enc.eval()
        if on_epoch is not None:
            on_epoch(epoch, st)
    bar.close()
    enc.eval()
    return st


def key(texts: Sequence[str], labels: Sequence[str]) -> str:
    """Names the tuned model: the base weights, the exemplars and RECIPE."""
    from ..models.weights import default_embedder_dir, file_hash

    return _digest([FORMAT, file_hash(default_embedder_dir()), list(texts), list(labels), asdict(RECIPE)])


def folder(texts: Sequence[str], labels: Sequence[str]) -> Path:
    return USER_CACHE / "guard" / f"encoder-{key(texts, labels)}"


def tuned_embedder(texts: Sequence[str], labels: Sequence[str]) -> Any:
    """The embedder tuned on these exemplars (``labels``: "benign" or a category), trained and
    saved on first use, loaded from the user cache after that."""
    target = folder(texts, labels)
    if target.is_dir():
        try:
            return _load(target)
        except ModelError as e:  # a damaged folder: train it again
            log.warning("the tuned guard encoder in %s does not load (%s); training it again", target, e)
    target.parent.mkdir(parents=True, exist_ok=True)
    # one trainer per model: a second process (or thread) waits here, then loads what the first saved
    with _training_lock(target):
        if target.is_dir():
            try:
                return _load(target)
            except ModelError:
                shutil.rmtree(target, ignore_errors=True)
        y = np.array([0.0 if lab == "benign" else 1.0 for lab in labels])
        st = fine_tune(texts, y, progress=(f"harmful: tuning the encoder on {len(texts)} exemplars, once for this "
                                           f"machine and these exemplars (~3 min on 2 cores); kept in {target}"))
        _sweep(target)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        st.save(str(tmp), safe_serialization=True)
        tmp.rename(target)
    return _load(target)


@contextmanager
def _training_lock(target: Path) -> Iterator[None]:
    """The flock on ``<target>.lock`` (freed by the kernel if the holder dies), and within this
    process a mutex, since one process's flocks on separately opened files do not exclude each other."""
    from ..locks import hold

    with _THREAD_LOCK:
        f = hold(target.with_name(f"{target.name}.lock"), f"training, pid {os.getpid()}", wait=True)
        try:
            yield
        finally:
            f.close()


def _sweep(target: Path) -> None:
    """Remove half-written folders beside ``target`` whose writer is gone (a killed save)."""
    from ..liveness import pid_alive

    for tmp in target.parent.glob(f"{target.name}.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid() or not pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _load(target: Path) -> Any:
    from ..models import get_embedder

    emb = get_embedder(f"st:{target}")
    emb.ort_threads = 1  # it runs beside the shared embedder on every text (embedders.py)
    return emb
