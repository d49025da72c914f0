"""transformers backend: ``hf:<dir-or-id>`` (also ``hf:<file.gguf>`` and ``hf:default``).

GGUF files are dequantized once into the workspace (``artifacts/hf-cache/<hash>``) as a plain
float32 HF folder: the first load takes ~15 s, later loads read safetensors. The same folder is
what fine-tuning starts from (:func:`materialize`).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from ..errors import ModelError
from ..workspace import Workspace
from .base import Generation, GenParams, Message, OnToken, Pieces
from .weights import default_gguf, file_hash

_materialize_lock = threading.Lock()


def _find_gguf(p: Path) -> Path | None:
    if p.is_file() and p.suffix == ".gguf":
        return p
    if p.is_dir() and not (p / "config.json").exists():
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0]
    return None


def materialize(source: str, ws: Workspace) -> Path | str:
    """A local folder that ``from_pretrained`` loads quickly (or a hub id, left as is)."""
    if source in ("", "default"):
        source = str(default_gguf())
    p = Path(source).expanduser()
    gguf = _find_gguf(p)
    if gguf is None:
        if p.is_dir():
            return p
        if p.suffix == ".gguf" or source.startswith((".", "/", "~")):
            raise ModelError(f"model path not found: {source}")
        return source  # a hub id; works when it is in the local HF cache
    cache = ws.artifacts / "hf-cache" / file_hash(gguf)[:16]
    with _materialize_lock:
        if (cache / "config.json").exists():
            return cache
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            quant = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        except Exception as e:
            raise ModelError(f"cannot load {gguf} into transformers: {e}") from e
        # A model loaded from GGUF carries a quantization_config that blocks save_pretrained and
        # training; rebuild a plain model from its config and (already dequantized) weights.
        config = quant.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quant.state_dict())
        plain.generation_config = quant.generation_config
        staging = ws.staging_dir()
        plain.save_pretrained(staging)
        tok.save_pretrained(staging)
        cache.parent.mkdir(parents=True, exist_ok=True)
        if cache.exists():
            shutil.rmtree(cache)
        os.replace(staging, cache)
        return cache


class HFModel:
    supports_concurrency = False

    def __init__(self, source: str, uri: str, ws: Workspace) -> None:
        self.uri = uri
        self.path = materialize(source, ws)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            # a folder inside the workspace (a registered model, the GGUF cache) may have come
            # with a cloned repository: safetensors only, never a pickled .bin
            inside = Path(self.path).resolve().is_relative_to(ws.artifacts.resolve())
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModelForCausalLM.from_pretrained(
                self.path, dtype=torch.float32, **({"use_safetensors": True} if inside else {}))
        except OSError as e:
            raise ModelError(f"cannot load '{source}' with transformers: {e}") from e
        self.model.eval()
        self._lock = threading.Lock()

    def weights_hash(self) -> str:
        return file_hash(Path(self.path)) if Path(self.path).exists() else str(self.path)

    def generate(self, messages: list[Message], params: GenParams, on_token: OnToken | None = None) -> Generation:
        import torch
        from transformers import TextStreamer

        tok = self.tokenizer
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)
        got = Pieces(on_token)

        class _Stream(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                got.add(text)

        sample = params.temperature > 0
        kwargs = dict(
            max_new_tokens=params.max_tokens, do_sample=sample,
            streamer=_Stream(tok, skip_prompt=True, skip_special_tokens=True),
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        )
        if sample:
            kwargs |= {"temperature": params.temperature, "top_p": params.top_p}
        else:
            kwargs |= {"temperature": None, "top_p": None, "top_k": None}
        if params.stop:
            kwargs |= {"stop_strings": list(params.stop), "tokenizer": tok}
        with self._lock, torch.no_grad():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            out = self.model.generate(**ids, **kwargs)
        n_prompt = ids["input_ids"].shape[1]
        new = out[0][n_prompt:]
        text = tok.decode(new, skip_special_tokens=True)
        for s in params.stop:  # stop_strings keeps the stop text; the other backends drop it
            if s in text:
                text = text[: text.index(s)]
        finish = "length" if len(new) >= params.max_tokens else "stop"
        return Generation(text, self.uri, int(n_prompt), int(len(new)), got.elapsed, got.ttft, finish)
