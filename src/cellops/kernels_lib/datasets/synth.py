"""Synthetic instruction data, self-instruct style (Wang et al. 2023), from seed tasks.

Each attempt shows the generator a few tasks sampled from the seed set (and from what it made
so far) and asks for one new task; a second call answers that task. Filters, in order, each
with its rejection count on the card: ``format`` (no task could be parsed, or an empty answer),
``length`` (task or answer too short / long), ``near_duplicate`` (ROUGE-L F1 >= 0.7 against
the seeds and every kept task, self-instruct's own measure and threshold: word overlap is what
makes two tasks the same; a MiniLM cosine would also reject different tasks on one topic, and
costs an embedder load), ``guard`` (the active guard policy, else the built-in ``default``,
blocks the task or the answer; redactions are kept redacted) and, when ``judge`` names a
model, ``judge`` (an llm-rubric FAIL). The result is a dataset version in chat format whose card
records the generator, the prompt version, the filters and the counts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from ..errors import InvalidInputError
from ..workspace import Workspace, get_workspace
from . import sources

PROMPT_NAME = "synth-self-instruct"
TEMPLATE = """Here are some example tasks:
{% for t in tasks %}
Task {{ loop.index }}: {{ t }}
{% endfor %}
Write one new task that is different from all of these. Reply with the task only, on one line.
Task {{ tasks | length + 1 }}:"""
RUBRIC = "The output is a correct, helpful and complete answer to the task it answers."
ROUGE_THRESHOLD = 0.7  # self-instruct's near-duplicate cut-off
Progress = Callable[[int, int], None]  # (kept so far, n wanted)
_WORD = re.compile(r"[a-z0-9]+")


def rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F1 of two token lists (longest common subsequence, as rouge_score computes it)."""
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(b), lcs / len(a)
    return 2 * p * r / (p + r)


def tokens(text: str) -> list[str]:
    """rouge_score's default tokenizer: lower case, alphanumeric runs."""
    return _WORD.findall(text.lower())


def seed_tasks(seed: Any, ws: Workspace) -> tuple[str, str, list[str]]:
    """(label, hash, task texts) from a dataset ref, a path or rows; empty: one clear line."""
    srcs = sources.read_all(seed, ws)
    tasks = [t for s in srcs for r in s.raws if r.error is None and (t := _task_of(r.record))]
    label = ", ".join(s.label for s in srcs)
    if not tasks:
        raise InvalidInputError(
            f"the seed set {label} has no tasks; give rows with messages (a user turn), prompt, "
            "instruction or text, e.g. ../shared/data/sft/seed_tasks.jsonl")
    import hashlib

    return label, hashlib.sha256("\n".join(tasks).encode()).hexdigest(), tasks


def _task_of(rec: Any) -> str | None:
    if isinstance(rec, str):
        return rec.strip() or None
    if not isinstance(rec, dict):
        return None
    if isinstance(rec.get("messages"), list):
        users = [m.get("content") for m in rec["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        return (users[0] or "").strip() or None if users and isinstance(users[0], str) else None
    for key in ("instruction", "prompt", "text", "question"):
        if isinstance(rec.get(key), str) and rec[key].strip():
            return rec[key].strip()
    return None


def parse_task(text: str) -> str | None:
    """The first non-empty line of the generation, without a 'Task N:' label."""
    for line in text.strip().split("\n"):
        line = re.sub(r"^\s*(?:task\s*\d*\s*[:.)-]|\d+\s*[.)])\s*", "", line, flags=re.I).strip()
        if line:
            return line
    return None


def _examples(rng: random.Random, seeds: list[str], made: list[str], k: int) -> list[str]:
    """k in-context tasks: mostly seeds, up to a quarter of them generated (self-instruct's 6 + 2)."""
    machine = rng.sample(made, min(len(made), k // 4))
    return rng.sample(seeds, min(len(seeds), k - len(machine))) + machine


class _Filters:
    """The filters' settings and what each rejected, in the order they run."""

    ORDER = ("format", "length", "near_duplicate", "guard", "judge")

    def __init__(self, seeds: list[str], policy: Any, judge: str | None, ws: Workspace,
                 min_words: int = 3, max_words: int = 150, max_answer_chars: int = 4000) -> None:
        self.seen = [tokens(t) for t in seeds]
        self.policy, self.judge, self.ws = policy, judge, ws
        self.min_words, self.max_words, self.max_answer_chars = min_words, max_words, max_answer_chars
        self.rejected = dict.fromkeys(self.ORDER if judge else self.ORDER[:-1], 0)

    def settings(self) -> dict[str, Any]:
        return {"format": "a one-line task and a non-empty answer",
                "length": f"task {self.min_words}-{self.max_words} words, answer <= {self.max_answer_chars} chars",
                "near_duplicate": f"ROUGE-L F1 < {ROUGE_THRESHOLD} against seeds and kept tasks",
                "guard": f"policy {self.policy.ref}: input rail on the task, output rail on the answer",
                **({"judge": f"llm-rubric by {self.judge}: {RUBRIC}"} if self.judge else {})}

    def task(self, task: str | None) -> str | None:
        """The filter that rejects the task before it is answered, or None."""
        if not task:
            return "format"
        if not self.min_words <= len(task.split()) <= self.max_words:
            return "length"
        toks = tokens(task)
        if any(rouge_l(toks, s) >= ROUGE_THRESHOLD for s in self.seen):
            return "near_duplicate"
        return None

    def pair(self, task: str, answer: str) -> tuple[str | None, str, str]:
        """(rejecting filter or None, task, answer) after the guard's redactions."""
        if not answer.strip():
            return "format", task, answer
        if len(answer) > self.max_answer_chars:
            return "length", task, answer
        rin = self.policy.check_input(task)
        rout = self.policy.check_output(answer) if rin.allowed else None
        if rout is None or not rout.allowed:
            return "guard", task, answer
        task, answer = rin.text, rout.text
        if self.judge:
            from ..prompts.assertions import evaluate

            check = evaluate({"type": "llm-rubric", "value": RUBRIC, "model": self.judge},
                             f"Task: {task}\nAnswer: {answer}", None, workspace=self.ws)
            if not check.passed:
                return "judge", task, answer
        return None, task, answer

    def keep(self, task: str) -> None:
        self.seen.append(tokens(task))


def _generate(llm: Any, template: str, seeds: list[str], filters: _Filters, n: int, limit: int,
              params: Any, tasks_per_prompt: int, rng_seed: int, progress: Progress | None
              ) -> tuple[list[dict[str, Any]], int]:
    """The self-instruct loop: (kept chat rows, attempts made)."""
    from ..models.base import GenParams
    from ..prompts.template import render

    rng, rows, made = random.Random(rng_seed), [], []
    attempts = 0
    while len(rows) < n and attempts < limit:
        attempts += 1
        text = render(template, {"tasks": _examples(rng, seeds, made, tasks_per_prompt)})
        gp = GenParams(temperature=params.temperature, max_tokens=min(64, params.max_tokens),
                       seed=rng_seed * 100_003 + attempts)  # a new sample each attempt, reproducibly
        task = parse_task(llm.generate([{"role": "user", "content": text}], gp).text)
        why = filters.task(task)
        if why is None and task is not None:
            answer = llm.generate([{"role": "user", "content": task}], params).text.strip()
            why, task, answer = filters.pair(task, answer)
        if why is not None or task is None:
            filters.rejected[why or "format"] += 1
        else:
            filters.keep(task)
            made.append(task)
            rows.append({"messages": [{"role": "user", "content": task}, {"role": "assistant", "content": answer}]})
        if progress is not None:
            progress(len(rows), n)
    return rows, attempts


def synthesize(name: str, *, seed: Any, n: int, model: str | None = None, judge: str | None = None,
               max_tokens: int = 128, temperature: float = 0.8, rng_seed: int = 0,
               tasks_per_prompt: int = 4, max_attempts: int | None = None,
               progress: Progress | None = None, workspace: Workspace | None = None,
               source: str = "python") -> Any:
    """Generate up to ``n`` new instruction rows from the ``seed`` tasks; save them as dataset ``name``.

    ``seed``: a dataset ref, a path or rows. At most ``max_attempts`` (default 4n) tasks are
    generated. Returns the DatasetVersion (its card records generator, prompt and filters).
    """
    from ..guard import active_policy
    from ..guard import load as load_policy
    from ..models import get_llm
    from ..models.base import GenParams
    from ..models.tasks import model_for
    from ..prompts import store as prompt_store
    from .store import save

    ws = workspace or get_workspace()
    if not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"n must be a positive number of rows, got {n!r}")
    label, seed_hash, seeds = seed_tasks(seed, ws)
    params = GenParams(temperature=temperature, max_tokens=max_tokens)  # bad values fail before any call
    prompt, _ = prompt_store.save(PROMPT_NAME, TEMPLATE, workspace=ws)  # versioned: the card names it
    model = model_for("prompt", model)
    llm = get_llm(model, ws)
    policy = active_policy(ws) or load_policy("default", ws)
    filters = _Filters(seeds, policy, judge, ws)
    rows, attempts = _generate(llm, prompt.template, seeds, filters, n, max_attempts or 4 * n,
                               params, tasks_per_prompt, rng_seed, progress)
    if not rows:
        raise InvalidInputError(
            f"none of {attempts} generations passed the filters (rejected: "
            + ", ".join(f"{k} {v}" for k, v in filters.rejected.items())
            + f"); use a stronger --model than {model}, or more max_tokens")
    synth = {"model": model, "model_hash": llm.weights_hash(), "prompt": prompt.ref,
             "seed_dataset": label, "seed_hash": seed_hash, "seed_tasks": len(seeds),
             "n_requested": n, "attempts": attempts, "kept": len(rows), "rng_seed": rng_seed,
             "params": params.to_dict(), "tasks_per_prompt": tasks_per_prompt,
             "filters": filters.settings(), "rejected": filters.rejected, "judge": judge}
    return save(name, rows, format="chat", workspace=ws, source=source,
                description=f"self-instruct from {label} by {model}", extra={"synthetic": synth})[0]
