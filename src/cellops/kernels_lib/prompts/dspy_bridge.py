"""DSPy's BootstrapFewShot on cellops models: few-shot demonstrations for the prompt optimizer.

Two small pieces make DSPy call cellops instead of LiteLLM:

- :class:`CellopsEngine`, a DSPy 3.4 custom engine (``complete(Request) -> Response``) that sends
  the request through a cellops LLM (metered and cached by the optimizer);
- :class:`PromptAdapter`, a DSPy adapter that formats a call exactly as the cellops prompt
  renders it (system prompt + the rendered user message; demonstrations as earlier turns) and
  takes the whole answer as the output. DSPy's own ChatAdapter asks for ``[[ ## field ## ]]``
  markers that small models do not follow, and would change the prompt being optimized.

So the teacher's calls are byte-for-byte the original version's calls, which the response cache
already holds from the baseline; the metric is the case's own assertions. DSPy's response cache
is off (``cache=False``): the workspace cache is the one cache.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

from ..models.base import GenParams
from .optimize_run import Demo

FIELD_IN, FIELD_OUT = "prompt_input", "answer"


class CellopsEngine:
    """DSPy engine: lm15 Request -> a cellops ``generate`` -> lm15 Response."""

    def __init__(self, llm: Any, seed: int | None) -> None:
        self.llm, self.seed = llm, seed

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import Message, Response, Usage

        messages = [{"role": "system", "content": _system_text(request.system)}] if request.system else []
        messages += [{"role": m.role, "content": m.text or ""} for m in request.messages]
        c = request.config
        params = GenParams(temperature=c.temperature or 0.0, top_p=c.top_p or 1.0,
                           max_tokens=c.max_tokens or 256, seed=c.seed if c.seed is not None else self.seed)
        g = self.llm.generate(messages, params)
        return Response(id=None, model=self.llm.uri, message=Message.assistant(g.text), finish_reason="stop",
                        usage=Usage(input_tokens=g.prompt_tokens, output_tokens=g.completion_tokens))


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    return "\n".join(getattr(p, "text", "") or "" for p in system)


def _adapter(system: str | None) -> Any:
    """The adapter, holding the prompt's own system text (a signature without instructions
    would get DSPy's generated ones)."""
    import dspy

    class PromptAdapter(dspy.Adapter):  # type: ignore[misc, name-defined]
        def format(self, signature: Any, demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
            msgs = [{"role": "system", "content": system}] if system else []
            for d in demos:
                msgs += [{"role": "user", "content": d[FIELD_IN]}, {"role": "assistant", "content": d[FIELD_OUT]}]
            return msgs + [{"role": "user", "content": inputs[FIELD_IN]}]

        def parse(self, signature: Any, completion: str) -> dict[str, Any]:
            return {FIELD_OUT: completion}

    return PromptAdapter()


def bootstrap(llm: Any, system: str | None, gen: GenParams, inputs: list[tuple[int, str]],
              passes: Callable[[int, str], bool], max_demos: int) -> list[Demo]:
    """Run DSPy's BootstrapFewShot over train cases ``(case number, rendered user message)``;
    ``passes(case, answer)`` is the metric. Returns the accepted demonstrations in order."""
    import dspy

    sig = dspy.Signature(f"{FIELD_IN} -> {FIELD_OUT}")
    lm = dspy.LM(f"cellops/{llm.uri}", engine=CellopsEngine(llm, gen.seed), cache=False,
                 temperature=gen.temperature, max_tokens=gen.max_tokens, top_p=gen.top_p)
    by_text = {text: number for number, text in inputs}
    trainset = [dspy.Example(**{FIELD_IN: text, "case": number}).with_inputs(FIELD_IN) for number, text in inputs]

    def metric(example: Any, pred: Any, trace: Any = None) -> bool:
        return passes(example.case, pred.answer)

    opt = dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=max_demos, max_labeled_demos=0,
                                max_rounds=1, max_errors=1)
    # BootstrapFewShot prints a tqdm bar and a summary line: the optimizer has its own progress bar
    with dspy.context(lm=lm, adapter=_adapter(system)), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        program = opt.compile(dspy.Predict(sig), trainset=trainset)
    return [Demo(by_text[d[FIELD_IN]], d[FIELD_IN], d[FIELD_OUT]) for d in program.demos
            if d[FIELD_IN] in by_text]
