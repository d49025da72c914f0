"""Model backends behind one registry and one URI syntax.

``default`` · ``qwen-1.5b`` / ``qwen-0.5b`` (catalog models, after ``cellops models pull``) ·
``llamacpp:<path.gguf>`` · ``hf:<dir-or-id-or-gguf>`` · ``openai:<base_url>#<model>``
· ``<name>@<version>`` (or plain ``<name>``) for a model in the workspace registry.
Loaded models are cached per process, keyed on the URI.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ModelError, NotFoundError
from ..registry import Registry
from ..workspace import Workspace, get_workspace
from .base import LLM, Generation, GenParams, Message, OnToken, to_messages
from .embedders import Embedder, get_embedder

__all__ = [
    "LLM", "Embedder", "Generation", "GenParams", "Message", "OnToken",
    "backends", "card", "evaluate_card", "generate", "get_embedder", "get_llm", "to_messages",
]

# scheme -> factory(spec, uri, workspace) -> LLM
backends: Registry[Callable[[str, str, Workspace], LLM]] = Registry("model backend", "models")


@backends.register("llamacpp")
def _llamacpp(spec: str, uri: str, ws: Workspace) -> LLM:
    from .llamacpp import LlamaCppModel
    from .weights import default_gguf

    return LlamaCppModel(default_gguf() if spec in ("", "default") else Path(spec), uri)


@backends.register("hf")
def _hf(spec: str, uri: str, ws: Workspace) -> LLM:
    from .hf import HFModel

    return HFModel(spec, uri, ws)


@backends.register("openai")
def _openai(spec: str, uri: str, ws: Workspace) -> LLM:
    from .openai_compat import OpenAICompatModel

    return OpenAICompatModel(spec, uri)


def _catalog_model(uri: str) -> LLM | None:
    """A pulled catalog model by its short URI (``qwen-1.5b``), or None if ``uri`` is not one."""
    from .catalog import BY_URI, pulled_path

    m = BY_URI.get(uri)
    if m is None:
        return None
    from .llamacpp import LlamaCppModel

    return LlamaCppModel(pulled_path(m), uri)


def _registry_model(ref: str, ws: Workspace) -> LLM:
    """A model version from the workspace registry (e.g. a fine-tune) -> its backend."""
    v = ws.resolve("model", ref)
    folder = ws.artifact_dir("model", v.name, v.version)
    fmt = v.content.get("format", "hf")
    uri = f"{v.name}@{v.version}"
    if fmt == "gguf":
        from .llamacpp import LlamaCppModel

        return LlamaCppModel(folder / v.content.get("file", "model.gguf"), uri)
    from .hf import HFModel

    return HFModel(str(folder / v.content.get("subdir", "model")), uri, ws)


def _is_catalog_uri(uri: str) -> bool:
    from .catalog import BY_URI

    return uri in BY_URI


def _catalog_uris() -> str:
    from .catalog import BY_URI

    return ", ".join(BY_URI)


_cache: dict[tuple[str, str], LLM] = {}
_cache_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    for llm in _cache.values():
        close = getattr(llm, "close", None)
        if close is not None:
            close()
    _cache.clear()


def get_llm(uri: str = "default", workspace: Workspace | None = None) -> LLM:
    """Load (once per process) the model named by ``uri``."""
    uri = (uri or "default").strip()
    ws = workspace or get_workspace()
    # File and endpoint models are the same in every workspace; registry and hf ones are not.
    shared = uri == "default" or uri.startswith(("llamacpp:", "openai:")) or _is_catalog_uri(uri)
    key = ("", uri) if shared else (str(ws.root), uri)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        scheme, sep, spec = uri.partition(":")
        if uri == "default":
            llm = backends.get("llamacpp")("default", "default", ws)
        elif sep and scheme in backends:
            llm = backends.get(scheme)(spec, uri, ws)
        elif sep and len(scheme) > 1:  # 'c:\\...' style paths are not schemes
            raise NotFoundError(
                f"unknown model URI '{uri}'; use default, {', '.join(s + ':...' for s in backends.names())}"
                " or NAME@VERSION from the model registry"
            )
        elif (catalog_llm := _catalog_model(uri)) is not None:
            llm = catalog_llm
        else:
            try:
                llm = _registry_model(uri, ws)
            except NotFoundError as e:
                raise NotFoundError(
                    f"unknown model '{uri}': {e}. Model URIs: default, {_catalog_uris()}, "
                    + ", ".join(s + ":..." for s in backends.names())
                ) from None
        _cache[key] = llm
        return llm


def generate(
    text_or_messages: str | list[Message], model: str = "default", *, system: str | None = None,
    on_token: OnToken | None = None, workspace: Workspace | None = None, **params: Any,
) -> Generation:
    """One call to a model, no prompt registry, no run record: the plain Python entry point.
    It makes a trace like the magics do (``generate MODEL``: load_model, generate), saved in the
    workspace; ``.trace_id`` names it (``cellops.traces.get``)."""
    from ..tracking import Trace, genai, traces

    gp = GenParams.from_dict(params)
    messages = to_messages(text_or_messages, system)
    ws = workspace or get_workspace()
    trace = Trace(f"generate {model}", **{"input.value": genai.clip(messages[-1]["content"] if messages else "")})
    try:
        with trace:
            with trace.span("load_model", **{"gen_ai.request.model": model}):
                llm = get_llm(model, ws)
            with trace.span("generate", kind="llm", **genai.llm_request(llm.uri, gp, messages)) as span:
                gen = _call(llm, model, messages, gp, on_token)
                genai.llm_response(span, gen)
    finally:  # a failed call keeps its trace: the error and traceback are on its span
        traces.save(ws, trace)
    gen.trace_id = trace.trace_id
    return gen


def _call(llm: LLM, model: str, messages: list[Message], gp: GenParams, on_token: OnToken | None) -> Generation:
    try:
        return llm.generate(messages, gp, on_token)
    except (ModelError, NotFoundError):
        raise
    except (OSError, RuntimeError, ValueError) as e:
        raise ModelError(f"model '{model}' failed: {e}") from e


def card(ref: str, workspace: Workspace | None = None) -> Any:
    """A registered model's card with its evaluation-and-risk section (see train.model_card)."""
    from ..train.model_card import model_card

    return model_card(ref, workspace)


def evaluate_card(ref: str, **kwargs: Any) -> Any:
    """Run the red-team guard evaluation on model ``ref`` and return its card (train.model_card)."""
    from ..train.model_card import evaluate_card as _evaluate

    return _evaluate(ref, **kwargs)
