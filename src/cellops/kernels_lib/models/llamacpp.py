"""llama-cpp-python backend: ``llamacpp:<file.gguf>`` and ``default`` (embedded SmolLM2).

The chat template comes from the GGUF's own ``tokenizer.chat_template`` metadata, rendered by
llama-cpp-python's Jinja2 formatter, so any instruct GGUF is prompted the way it was trained.

Prompts are evaluated here, in chunks whose boundaries depend only on the prompt itself: a grid
(16 tokens up to 64, then 128) that starts at position 0 and again where each message's content
begins. A call reuses the cached chunks of the previous prompt that its own prompt starts with,
so the numbers for a given prompt are the same whatever ran before it (a greedy answer is
reproducible within a process, not only across processes), while a shared chat header, system
prompt, earlier turn or few-shot prefix is still evaluated once. The restart at a message's
content makes "same system prompt, new question" reuse everything up to the question, as
llama_cpp.server's token-by-token prefix reuse does, and evaluate the question in one batch. llama-cpp-python's own
reuse re-decodes the tail of any common prefix in whatever batch is left over, which rounds
differently: a yes/no judge flipped on an identical second call.

Where a message's content begins is found by rendering the chat up to that message with its
content emptied (a probe). The probe depends on the messages before it only, so its tokens are
cached by that prefix: a chat's next turn renders and tokenizes the whole prompt once plus a probe
for each new message, not one per message of the conversation.

Scoring (P(yes), hidden states) runs in a second context on the same weights (llamacpp_score.py),
so answers and judges keep their own prompts in their own KV caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..lru import LRU
from .base import Generation, GenParams, Message, OnToken, Pieces
from .weights import file_hash

# Chunk schedule of prompt evaluation: small chunks first, so short prompts that share only a
# chat header still reuse it; larger ones after, which evaluate long prompts as fast as 512.
SMALL, SWITCH, LARGE = 16, 64, 128
PROBES = 1024  # probe token arrays kept per model (LRU): a served chat adds two per turn


EXTRA_BUFTS_ENV = "CELLOPS_LLAMA_EXTRA_BUFTS"  # 1: keep llama.cpp's AMX/repack CPU buffers
_params_lock = threading.Lock()
N_CTX_ENV = "CELLOPS_N_CTX"  # context length of llama.cpp models, in tokens


def _n_ctx() -> int:
    raw = os.environ.get(N_CTX_ENV, "4096")
    if not raw.isdigit() or int(raw) < 256:
        raise ModelError(f"{N_CTX_ENV}={raw!r}: use a whole number of tokens, at least 256 (default 4096)")
    return int(raw)


def _grid(n: int, coarse: bool = False) -> list[int]:
    if coarse:
        return list(range(0, n, LARGE))
    return list(range(0, min(n, SWITCH), SMALL)) + list(range(SWITCH, n, LARGE))


def chunk_starts(n: int, restarts: Iterable[int] = (), coarse: bool = False) -> list[int]:
    """Where the chunks of an ``n``-token prompt start: the grid from 0 and again from every
    restart (where a message's content begins), so a function of the prompt only. ``coarse``:
    whole LARGE chunks from each restart (a scorer whose prompts share whole messages)."""
    cuts = sorted({0, *(r for r in restarts if 0 < r < n)})
    return [a + s for a, b in zip(cuts, [*cuts[1:], n], strict=True) for s in _grid(b - a, coarse)]


def _canonical(message: Message) -> bytes:
    """A message as bytes for the probe cache's key (JSON: each one delimits itself)."""
    return json.dumps(message, sort_keys=True, ensure_ascii=False, default=str).encode()


def _common_prefix(a: list[int] | np.ndarray, b: list[int] | np.ndarray) -> int:
    n = min(len(a), len(b))
    differs = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differs[0]) if differs.size else n


def _reusable(cached: list[int], cached_starts: list[int], tokens: list[int], starts: list[int]) -> int:
    """How many leading tokens of a context holding ``cached`` (evaluated in chunks from
    ``cached_starts``) a prompt of ``tokens`` in chunks from ``starts`` keeps: whole chunks with
    the same boundaries and tokens, so every result is what an evaluation from zero gives (a
    chunk's numbers depend on how many tokens are evaluated with it); at least one token is
    evaluated again, for fresh outputs."""
    same = min(_common_prefix(cached, tokens), len(tokens) - 1)
    ends = [*cached_starts, len(cached)]  # the cached prompt's chunk boundaries
    keep = 0
    for i, s in enumerate(starts):
        if s > same or i >= len(ends) or ends[i] != s:
            break
        keep = s
    return keep




@contextmanager
def _plain_cpu_buffers() -> Iterator[None]:
    """Load with llama.cpp's "extra" CPU buffer types off. They include its AMX matmul, which
    dies with SIGILL (the whole process) where the CPU reports AMX but the VM never enabled the
    tile state, as on this Firecracker VM; batches of 2+ tokens hit it. llama-cpp-python has no
    argument for ``use_extra_bufts``, so its default model params are patched while a model loads.
    ``CELLOPS_LLAMA_EXTRA_BUFTS=1`` keeps them (bare-metal AMX machines)."""
    if os.environ.get(EXTRA_BUFTS_ENV) == "1":
        yield
        return
    import llama_cpp.llama_cpp as low

    with _params_lock:
        original = low.llama_model_default_params

        def params() -> Any:
            p = original()
            p.use_extra_bufts = False
            return p

        low.llama_model_default_params = params
        try:
            yield
        finally:
            low.llama_model_default_params = original

def _recording(generate: Any, sink: list[int]) -> Any:
    """Llama.generate, appending every sampled token to ``sink`` (create_completion iterates it)."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        for token in generate(*args, **kwargs):
            sink.append(token)
            yield token

    return wrapped


# next tokens whose probabilities give P(yes) (p_yes)
YES_NO = ("yes", "Yes", "no", "No")


class LlamaCppModel:
    supports_concurrency = False  # one llama.cpp context serves one request at a time

    def __init__(self, path: Path, uri: str, n_ctx: int | None = None) -> None:
        path = Path(path).expanduser()
        n_ctx = n_ctx or _n_ctx()
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}; check the path in '{uri}'")
        self.uri, self.path = uri, path
        self._lock = threading.Lock()
        self._prompt_len = 0  # tokens of the last prompt; only these (not its answer) are reused
        self._prompt_starts: list[int] = []  # where that prompt's chunks started
        self._probes: LRU[bytes, np.ndarray | None] = LRU(PROBES)  # see _probe
        self._scorer: Any = None  # llamacpp_score.ScoreContext: P(yes) and hidden states, opened on first use
        self._scorer_lock = threading.Lock()
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            with _plain_cpu_buffers():
                self._llm = Llama(
                    model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 2,
                    n_batch=LARGE, verbose=False, seed=0,
                )
        except ImportError as e:
            raise ModelError("llama-cpp-python is not installed; run: pip install llama-cpp-python") from e
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"cannot load GGUF {path}: {e}") from e
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{path.name} has no chat template in its metadata; use a chat/instruct GGUF")
        self._sampled: list[int] = []  # the tokens of the current generation, as llama.cpp sampled them
        self._llm.generate = _recording(self._llm.generate, self._sampled)  # type: ignore[method-assign]
        tok = self._llm._model  # token texts for the template's bos/eos variables
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=tok.token_get_text(self._llm.token_eos()),
            bos_token=tok.token_get_text(self._llm.token_bos()),
        )

    def close(self) -> None:
        """Free the llama.cpp contexts now (their own __del__ fails at interpreter shutdown)."""
        self._llm.close()
        if self._scorer is not None:
            self._scorer.close()

    def weights_hash(self) -> str:
        return file_hash(self.path)

    def render(self, messages: list[Message]) -> tuple[str, list[str]]:
        """The exact prompt text the model sees, and the template's stop strings."""
        r = self._formatter(messages=messages)
        stops = [r.stop] if isinstance(r.stop, str) else list(r.stop or [])
        return r.prompt, stops

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def clip_tokens(self, text: str, max_tokens: int) -> str:
        """``text`` cut after its first ``max_tokens`` tokens (unchanged when it is shorter)."""
        ids = self._llm.tokenize(text.encode(), add_bos=False, special=False)
        if len(ids) <= max_tokens:
            return text
        return self._llm.detokenize(ids[:max_tokens]).decode("utf-8", errors="ignore")

    def _prompt_tokens(self, messages: list[Message], coarse: bool = False) -> tuple[list[int], list[int], list[str]]:
        """The rendered prompt's tokens, where its chunks start and the template's stop strings.
        A message's content begins where the chat rendered up to it, with that content emptied,
        stops matching the prompt."""
        prompt, stops = self.render(messages)
        tokens = self._llm.tokenize(prompt.encode(), add_bos=True, special=True)
        whole = np.asarray(tokens)
        restarts = []
        prefix = hashlib.sha256()  # digest of the messages so far: the probes' cache key
        for i, m in enumerate(messages):
            emptied = {**m, "content": ""}
            key = prefix.copy()
            key.update(_canonical(emptied))
            prefix.update(_canonical(m))
            if isinstance(m.get("content"), str) and m["content"]:
                probe = self._probe(key.digest(), [*messages[:i], emptied])
                if probe is not None:
                    restarts.append(_common_prefix(probe, whole))
        return tokens, chunk_starts(len(tokens), restarts, coarse), stops

    def _probe(self, key: bytes, messages: list[Message]) -> np.ndarray | None:
        """Tokens of ``messages`` rendered (its last content emptied), cached by ``key``; None when
        the template refuses them (then that message adds no restart)."""
        from jinja2 import TemplateError

        hit, cached = self._probes.lookup(key)
        if hit:
            return cached
        try:
            text, _ = self.render(messages)
            got = np.asarray(self._llm.tokenize(text.encode(), add_bos=True, special=True), dtype=np.int32)
        except (TemplateError, TypeError, ValueError):
            got = None
        self._probes.put(key, got)
        return got

    def _eval_prompt(self, tokens: list[int], starts: list[int]) -> None:
        """Leave the context holding exactly ``tokens``: keep the cached chunks of the last prompt
        that are also this prompt's first chunks (same boundaries, same tokens; at least one token
        is evaluated again, for fresh logits) and evaluate the rest chunk by chunk, as an
        evaluation from zero would."""
        llm = self._llm
        keep = _reusable(list(llm.input_ids[: min(llm.n_tokens, self._prompt_len)]), self._prompt_starts,
                         tokens, starts)
        if keep == 0:
            llm.reset()
        else:
            llm.n_tokens = keep
        self._prompt_len, self._prompt_starts = 0, []  # until the evaluation below completes
        for start, end in zip(starts, [*starts[1:], len(tokens)], strict=True):
            if start >= keep:
                llm.eval(tokens[start:end])
        self._prompt_len, self._prompt_starts = len(tokens), starts

    def _check_fits(self, n: int) -> None:
        """llama.cpp refuses a prompt that fills the context with a bare ValueError; say what to do."""
        n_ctx = self._llm.n_ctx()
        if n >= n_ctx:
            raise ModelError(
                f"the prompt is {n} tokens, more than the {n_ctx}-token context window of {self.uri} "
                f"(prompt and answer share it); shorten it (fewer or shorter passages, a smaller -k for "
                f"%%rag), or set {N_CTX_ENV}={2 * n_ctx} before the model loads (then restart the kernel)")

    def _score(self, messages: list[Message], coarse: bool, hidden: bool = False) -> np.ndarray:
        """The rendered prompt's next-token logits (``hidden``: its last hidden state) from the
        scoring context (llamacpp_score.py), opened on first use on the same mmap'd weights."""
        tokens, starts, _ = self._prompt_tokens(messages, coarse)
        self._check_fits(len(tokens))
        with self._scorer_lock:
            if self._scorer is None:
                from .llamacpp_score import ScoreContext

                self._scorer = ScoreContext(self.path, self._llm.n_ctx(), LARGE)
        return self._scorer.hidden_state(tokens, starts) if hidden else self._scorer.logits(tokens, starts)

    def choice_probabilities(self, messages: list[Message], words: tuple[str, ...],
                             coarse: bool = False) -> list[float]:
        """P(the answer starts with each of ``words``), renormalised over them: the next-token
        log-probabilities after the rendered prompt, no sampling (a pointwise yes/no scorer).
        ``coarse``: evaluate each message's content in whole LARGE chunks (fewer, faster llama.cpp
        calls; the KV cache is then reused only for whole messages shared with the last call)."""
        ids = [self._llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words]
        logits = self._score(messages, coarse)[ids].astype(np.float64)
        z = logits - logits.max()
        p = np.exp(z)
        return [float(x) for x in p / p.sum()]

    def hidden_state(self, messages: list[Message]) -> np.ndarray:
        """The model's final hidden state (after the output norm, before the vocabulary head) at the
        last token of the rendered prompt: the vector whose projection gives the next-token logits,
        for the guard cascade's probes (guard/checks/probe.py). The prompt is evaluated in the
        chunks of ``choice_probabilities(coarse=True)``, in the same scoring context: whole messages
        shared with the last call are reused, and the result is the same whatever came before."""
        return self._score(messages, coarse=True, hidden=True)

    def p_yes(self, messages: list[Message], coarse: bool = False) -> float:
        """P(the answer is yes): P(yes) + P(Yes) among yes/Yes/no/No (the rerank and the guard judge)."""
        p = self.choice_probabilities(messages, YES_NO, coarse=coarse)
        return p[0] + p[1]

    def generate(self, messages: list[Message], params: GenParams, on_token: OnToken | None = None) -> Generation:
        import llama_cpp

        tokens, starts, template_stops = self._prompt_tokens(messages)
        self._check_fits(len(tokens))
        with self._lock:
            got, finish, n = Pieces(on_token), "stop", 0
            self._eval_prompt(tokens, starts)
            self._sampled.clear()
            # the whole prompt is now in the context: llama-cpp-python samples from it directly
            stream = self._llm.create_completion(
                tokens, max_tokens=params.max_tokens, temperature=params.temperature,
                top_p=params.top_p, stop=list(params.stop) + template_stops,
                seed=params.seed, stream=True,
            )
            for chunk in stream:
                choice = chunk["choices"][0]
                got.add(choice["text"])
                n += 1
                finish = choice.get("finish_reason") or finish
            latency = got.elapsed
            prompt_tokens = len(tokens)
            # the model's own count, as llama_cpp.server reports it: the sampled tokens but the
            # end-of-generation one (re-tokenizing the text can merge tokens and count fewer)
            vocab = self._llm._model.vocab
            completion_tokens = sum(not llama_cpp.llama_vocab_is_eog(vocab, t) for t in self._sampled)
        text = got.text
        return Generation(text, self.uri, prompt_tokens, completion_tokens, latency, got.ttft, finish)

    def chat_tools(self, messages: list[Message], tools: list[dict], tool_choice: Any,
                   params: GenParams) -> Any:
        """Function calling through llama-cpp-python's chatml-function-calling handler (see tools.py)."""
        import time

        from llama_cpp.llama_chat_format import chatml_function_calling

        from .tools import reply_from_message

        if "<|im_start|>" not in (self._llm.metadata.get("tokenizer.chat_template") or ""):
            raise ModelError(f"{self.uri} does not use the ChatML chat format, which tool calling "
                             "with llama.cpp needs here; use an openai: endpoint that supports tools")
        with self._lock:
            self._prompt_len = 0  # the handler evaluates its own prompt: nothing cached stays valid
            t0 = time.perf_counter()
            try:
                resp = chatml_function_calling(
                    llama=self._llm, messages=messages, tools=tools, tool_choice=tool_choice,
                    temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                    stop=list(params.stop))
            finally:
                self._prompt_len = 0
        return reply_from_message(resp["choices"][0], resp.get("usage"), time.perf_counter() - t0)
