"""Prompt optimization: ``optimize(ref, cases, search=..., budget=...)`` -> OptimizeResult.

The cases are split (seeded) into train and held-out. The original version is scored on both;
then a search over the chosen dimensions runs on the train split only:

- ``system``: system prompts a model proposes from the original one, an example input and the
  assertions (``proposer``, default the prompt's own model);
- ``fewshot``: demonstrations bootstrapped from train cases the original version passes, by
  DSPy's ``BootstrapFewShot`` through an adapter that calls cellops models (dspy_bridge.py);
- ``params``: temperature, top_p, max_tokens;
- ``model``: the candidate ``models``.

Optuna's TPE sampler drives the search (the original version is its first, known trial). Scores
are the prompt's own assertions (llm-rubric included): the mean over cases of the fraction of a
case's assertions that pass. The best train candidate becomes a new version only if it beats the
original on train; both are then reported on the held-out split. Every model call counts against
the budget (budget.py), which is planned and shown before the first call and never exceeded.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from ..guard import active_policy
from ..models import GenParams, get_llm
from ..models.tasks import model_for
from ..tracking import Trace, traces, tracker, tracker_run
from ..workspace import Workspace, get_workspace
from . import assertions, store
from .budget import Budget, BudgetSpent, Meter, MeteredLLM
from .cache import CachedLLM, CacheStats
from .cases import Case, load_cases
from .optimize_run import Candidate, CaseResult, Demo, Scorer, mean_score
from .optimize_view import OptimizeResult, Trial

SEARCH = ("system", "fewshot", "params", "model")
PROPOSALS = 4  # system prompts asked of the proposer
MAX_DEMOS = 3
Progress = Callable[[int, int, str], None]  # (calls used, calls allowed, status)


@dataclass
class Plan:
    """What the optimization will do and the most it can cost, before any call."""

    prompt: store.Prompt
    train: list[Case]
    holdout: list[Case]
    search: tuple[str, ...]
    budget: Budget
    models: list[str]
    proposer: str
    proposals: int
    trials: int
    seed: int
    cost: dict[str, int] = field(default_factory=dict)  # calls per phase (worst case: no cache hit)

    def describe(self) -> str:
        c = self.cost
        return (f"optimize {self.prompt.ref} over {', '.join(self.search)} on {len(self.train)} train / "
                f"{len(self.holdout)} held-out cases · budget {self.budget.describe()} · at most: "
                f"baseline {c['baseline']} + proposals {c['proposals']} + bootstrap {c['bootstrap']} + "
                f"{self.trials} trials x {c['trial']} + final {c['final']} calls (cache hits are free)")


def _calls(cases: list[Case]) -> int:
    """Model calls to score cases: one per case plus one per llm-rubric assertion."""
    return sum(1 + sum(assertions._split(a["type"])[0] == "llm-rubric" for a in c.asserts) for c in cases)


def _split(cases: list[Case], holdout: float, seed: int) -> tuple[list[Case], list[Case]]:
    if not 0.0 < holdout < 1.0:
        raise InvalidInputError(f"holdout must be a fraction between 0 and 1, got {holdout}")
    if len(cases) < 2:
        raise InvalidInputError(f"optimize needs at least 2 cases (train + held-out), got {len(cases)}")
    order = list(range(len(cases)))
    random.Random(seed).shuffle(order)
    n_hold = min(len(cases) - 1, max(1, round(len(cases) * holdout)))
    held = set(order[:n_hold])
    return [c for i, c in enumerate(cases) if i not in held], [c for i, c in enumerate(cases) if i in held]


def plan(ref: str | store.Prompt, cases: Any = None, *, search: Any = ("system", "fewshot", "params"),
         budget: Any = 40, holdout: float = 0.3, models: list[str] | None = None,
         proposer: str | None = None, seed: int = 0, workspace: Workspace | None = None) -> Plan:
    """Check everything and size the search; no model is called."""
    ws = workspace or get_workspace()
    prompt = ref if isinstance(ref, store.Prompt) else store.get(ref, ws)
    pmodel = model_for("prompt", prompt.params.get("model"))
    models = [pmodel] + [m for m in (models or []) if m != pmodel]  # the original is a point too
    dims = _search(search, models)
    b = Budget.parse(budget)
    loaded = load_cases(cases if cases is not None else (prompt.tests or None), ws)  # NAME@V datasets too
    assertions.validate_cases(loaded)
    bare = [c for c in loaded if not c.asserts]
    if bare:
        named = ", ".join(f"{c.number} ({c.where})" for c in bare[:5]) + (" ..." if len(bare) > 5 else "")
        raise InvalidInputError(f"optimize scores answers with each case's assertions, and case(s) {named} "
                                "have none; add an 'assert' list to every case")
    train, held = _split(loaded, holdout, seed)
    from .cache import cache_enabled

    cost = {"baseline": _calls(train) + _calls(held), "trial": _calls(train), "final": _calls(held),
            "proposals": PROPOSALS if "system" in dims else 0,
            # DSPy re-runs the original on train cases: answers from the cache unless it is off
            "bootstrap": len(train) if "fewshot" in dims and not cache_enabled() else 0}
    fixed = cost["baseline"] + cost["proposals"] + cost["bootstrap"] + cost["final"]
    trials = (b.calls - fixed) // cost["trial"]
    if trials < 1:
        raise InvalidInputError(
            f"a budget of {b.calls} calls is too small for {len(train)} train / {len(held)} held-out cases: "
            f"the baseline, proposals and final scoring need {fixed} and each trial {cost['trial']}; "
            f"give at least --budget {fixed + cost['trial']}")
    return Plan(prompt, train, held, dims, b, models, proposer or pmodel,
                cost["proposals"], trials, seed, cost)


def _search(search: Any, models: list[str]) -> tuple[str, ...]:
    dims = tuple(s.strip() for s in (search.split(",") if isinstance(search, str) else search) if s.strip())
    bad = [d for d in dims if d not in SEARCH]
    if bad or not dims:
        raise InvalidInputError(f"unknown search dimension(s) {', '.join(bad) or '(none)'}; use a comma list of "
                                + ", ".join(SEARCH))
    if "model" in dims and len(models) < 2:
        raise InvalidInputError("--search model needs another candidate model than the prompt's own: "
                                "--models URI,URI")
    return dims


PROPOSER_SYSTEM = ("You improve instructions for an AI assistant. Reply with the new instruction only: "
                   "one or two sentences, no quotes, no preamble.")


class _Session:
    """Models (metered, then cached), the scorer and the progress bar of one optimization."""

    def __init__(self, p: Plan, ws: Workspace, cache: bool, variables: dict[str, Any],
                 progress: Progress | None) -> None:
        self.p, self.ws, self.cache = p, ws, cache
        self.meter = Meter(p.budget)
        self.stats = CacheStats()
        self._llms: dict[str, CachedLLM] = {}
        self.progress = progress
        self.best = 0.0
        # one trace for the whole optimization: a span per trial, a span per case under it
        self.trace = Trace(f"optimize {p.prompt.ref}", "chain", **{"cellops.prompt": p.prompt.ref})
        self.scorer = Scorer(p.prompt, self.llm, active_policy(ws), ws,
                             assertions.default_grader(ws, llm_for=self.llm), variables, on_call=self.tick)

    def llm(self, uri: str) -> CachedLLM:
        if uri not in self._llms:
            self._llms[uri] = CachedLLM(MeteredLLM(get_llm(uri, self.ws), self.meter), self.ws, self.stats,
                                        enabled=self.cache)
        return self._llms[uri]

    def tick(self, status: str = "") -> None:
        if self.progress is not None:
            self.progress(self.meter.calls, self.p.budget.calls, status or f"best train {self.best:.3f}")

    def score(self, cand: Candidate, cases: list[Case], name: str, split: str = "train",
              **attrs: Any) -> tuple[float, list[CaseResult], list[dict[str, Any]]]:
        """Score ``cand`` on ``cases`` in one span of the optimization's trace; returns the score,
        the case results and that span's part of the trace."""
        n0 = len(self.trace.spans)
        with self.trace.span(name, "chain", split=split, **attrs) as span:
            results = self.scorer.run(cand, cases, self.trace, split)
            span.attrs["cellops.score"] = mean_score(results)
        ids = {sp.span_id for sp in self.trace.spans[n0:]}
        return mean_score(results), results, [d for d in self.trace.to_list() if d["span_id"] in ids]


def propose(s: _Session, train_results: list[CaseResult]) -> list[str]:
    """System prompts the proposer model writes from the original, one input and the checks."""
    p = s.p
    example = train_results[0].messages[-1]["content"]
    # the kinds of checks, not their expected texts: a proposal must not carry train answers
    checks = "; ".join(sorted({a["type"] + (f" {a['value']}" if isinstance(a.get("value"), int | float) else "")
                               for c in p.train for a in c.asserts}))[:400]
    current = p.prompt.system or "(none)"
    out: list[str] = []
    for i in range(p.proposals):
        messages = [{"role": "system", "content": PROPOSER_SYSTEM},
                    {"role": "user", "content": f"Current instruction: {current}\n\nExample input:\n{example}\n\n"
                                                f"A good answer passes these checks: {checks}\n\nWrite a better instruction."}]
        with s.trace.span("propose", "llm", **{"gen_ai.request.model": p.proposer}) as span:
            text = s.llm(p.proposer).generate(messages, GenParams(temperature=0.9, top_p=0.95, max_tokens=64,
                                                                   seed=p.seed + i)).text
            span.attrs["output.value"] = text[:500]
        s.tick()
        cleaned = text.strip().strip('"').split("\n\n")[0].strip()
        # a proposal is a system *template*: braces would be read as Jinja
        if cleaned and "{" not in cleaned and "}" not in cleaned and cleaned not in out and cleaned != p.prompt.system:
            out.append(cleaned)
    return out


def _demos(s: _Session, results: list[CaseResult]) -> list[Demo]:
    """Demonstrations from the train cases the original passes, chosen by DSPy's BootstrapFewShot."""
    from .dspy_bridge import bootstrap
    from .run import resolve_call

    passing = {r.case for r in results if r.score == 1.0 and r.output}
    if not passing:
        return []
    cases = {c.number: c for c in s.p.train}
    first = cases[min(passing)]
    messages, uri, gp = resolve_call(s.p.prompt, s.scorer.variables | first.vars, None, None)
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    inputs = [(r.case, r.messages[-1]["content"]) for r in results if r.output]

    def passes(case: int, answer: str) -> bool:
        checks = [s.scorer._check(a, answer, None) for a in cases[case].asserts]
        return all(c.passed for c in checks)

    with s.trace.span("bootstrap", "step", **{"cellops.optimizer": "dspy.BootstrapFewShot"}) as span:
        demos = bootstrap(s.llm(uri), system, gp, inputs, passes, max_demos=MAX_DEMOS)
        span.attrs["cellops.demos"] = [d.case for d in demos]
    return demos


def _space(p: Plan, systems: list[str | None], pool: list[Demo]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Optuna distributions of the search, and the original version as a point in it."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    gp = GenParams.from_dict({k: v for k, v in p.prompt.params.items() if k in GenParams.__dataclass_fields__})
    dists: dict[str, Any] = {}
    origin: dict[str, Any] = {}
    if "system" in p.search and len(systems) > 1:
        dists["system"], origin["system"] = CategoricalDistribution(list(range(len(systems)))), 0
    if "fewshot" in p.search and pool:
        dists["fewshot"], origin["fewshot"] = IntDistribution(0, min(MAX_DEMOS, len(pool))), 0
    if "params" in p.search:
        top = max(16, gp.max_tokens)
        dists["temperature"], origin["temperature"] = FloatDistribution(0.0, 1.0), min(gp.temperature, 1.0)
        dists["top_p"], origin["top_p"] = FloatDistribution(0.5, 1.0), max(gp.top_p, 0.5)
        dists["max_tokens"], origin["max_tokens"] = IntDistribution(8, top, log=True), max(8, min(gp.max_tokens, top))
    if "model" in p.search:
        dists["model"], origin["model"] = CategoricalDistribution(p.models), p.models[0]
    return dists, origin


def _candidate(p: Plan, point: dict[str, Any], systems: list[str | None], pool: list[Demo]) -> Candidate:
    params = {k: point[k] for k in ("temperature", "top_p", "max_tokens") if k in point}
    return Candidate(systems[point.get("system", 0)], tuple(pool[:point.get("fewshot", 0)]), params,
                     point.get("model"))


def _search_loop(s: _Session, systems: list[str | None], pool: list[Demo], baseline_train: float,
                 trials: list[Trial]) -> tuple[Candidate, float]:
    import optuna

    p = s.p
    dists, origin = _space(p, systems, pool)
    best, best_score = Candidate(p.prompt.system), baseline_train
    if not dists:
        return best, best_score
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=p.seed, n_startup_trials=min(4, p.trials)))
    study.add_trial(optuna.trial.create_trial(params=origin, distributions=dists, value=baseline_train))
    for number in range(1, p.trials + 1):
        if s.meter.calls_left < p.cost["trial"] + p.cost["final"]:
            break  # keep what the held-out check of the winner needs
        t = study.ask(dists)
        cand = _candidate(p, t.params, systems, pool)
        before = s.meter.calls
        try:
            score, _, spans = s.score(cand, p.train, "trial", number=number, **_attrs(cand))
        except BudgetSpent:
            study.tell(t, state=optuna.trial.TrialState.FAIL)
            trials.append(Trial(number, cand.describe(), None, s.meter.calls - before))
            break
        study.tell(t, score)
        trials.append(Trial(number, cand.describe(), score, s.meter.calls - before, spans))
        if score > best_score:  # strictly better on train, or the original stays
            best, best_score = cand, score
            s.best = score
    return best, best_score


def _attrs(cand: Candidate) -> dict[str, Any]:
    return {k: v for k, v in cand.describe().items() if isinstance(v, int | float | str)}


def _progress(progress: Progress | bool | None, total: int) -> tuple[Progress | None, Any]:
    if callable(progress):
        return progress, None
    if not progress:
        return None, None
    from tqdm.std import tqdm

    bar = tqdm(total=total, desc="optimize", unit="call", file=sys.stderr)

    def cb(done: int, _total: int, status: str) -> None:
        bar.update(done - bar.n)
        bar.set_postfix_str(status, refresh=False)

    return cb, bar


def run_plan(p: Plan, *, progress: Progress | bool | None = True, variables: dict[str, Any] | None = None,
             cache: bool = True, workspace: Workspace | None = None, source: str = "python") -> OptimizeResult:
    """Run a planned optimization (``plan`` checked it and sized it against the budget)."""
    ws = workspace or get_workspace()
    cb, bar = _progress(progress, p.budget.calls)
    s = _Session(p, ws, cache, dict(variables or {}), cb)
    notes: list[str] = []
    try:
        base = Candidate(p.prompt.system)
        base_train, train_res, spans = s.score(base, p.train, "baseline", split="train")
        base_hold, _, hold_spans = s.score(base, p.holdout, "baseline", split="holdout")
        s.best = base_train
        trials = [Trial(0, base.describe(), base_train, s.meter.calls, spans + hold_spans)]
        systems: list[str | None] = [p.prompt.system]
        if "system" in p.search:
            systems += propose(s, train_res)
        pool = _demos(s, train_res) if "fewshot" in p.search else []
        if "fewshot" in p.search and not pool:
            notes.append("no train case passes with the original version, so there are no demonstrations")
        best, best_train = _search_loop(s, systems, pool, base_train, trials)
        prompt, score = p.prompt, base_hold
        if best != base:
            try:
                score, _, final_spans = s.score(best, p.holdout, "final", split="holdout")
                prompt = _save(p, best, ws)
                winner = next(t for t in trials if t.config == best.describe() and t.train_score == best_train)
                winner.trace += final_spans
            except BudgetSpent as e:
                notes.append(f"the winner was not saved: {e} before its held-out check")
                best_train = base_train
    finally:
        if bar is not None:
            bar.close()
    used = s.meter.to_dict() | {"cache_hits": s.stats.hits}
    result = OptimizeResult(p.prompt, prompt, base_hold, score, base_train, best_train, trials,
                            {**_asdict(p.budget), "describe": p.budget.describe()}, used, len(p.train),
                            len(p.holdout), notes=notes, trace_id=s.trace.trace_id)
    result.run_id = _record(result, p, ws, source)
    s.trace.root.attrs["cellops.score"] = result.score
    traces.save(ws, s.trace, result.run_id)
    return result


def _asdict(b: Budget) -> dict[str, Any]:
    return {"calls": b.calls, "tokens": b.tokens, "seconds": b.seconds}


def _save(p: Plan, best: Candidate, ws: Workspace) -> store.Prompt:
    cand = best.prompt(p.prompt)
    prompt, _ = store.save(p.prompt.name, cand.template, cand.system, cand.params, p.prompt.tests or None, ws)
    return prompt


def _record(r: OptimizeResult, p: Plan, ws: Workspace, source: str) -> str:
    rec = {"source": source, "prompt": r.original.ref, "result": r.version, "search": list(p.search),
           "budget": r.budget, "used": r.used, "baseline_score": r.baseline_score, "score": r.score,
           "baseline_train": r.baseline_train, "train_score": r.train_score, "n_train": r.n_train,
           "n_holdout": r.n_holdout, "trials": [t.to_dict() for t in r.trials], "notes": r.notes,
           "trace_id": r.trace_id, **tracker_run(ws.root)}
    run_id = ws.record_run("prompt_optimize", rec, r.prompt.name, r.prompt.version)
    cols, rows = r.table()
    tracker.log({"prompt_optimize/run_id": run_id, "prompt_optimize/baseline_score": r.baseline_score,
                 "prompt_optimize/score": r.score, "prompt_optimize/calls": r.used["calls"]},
                tables={"prompt_optimize/scores": (list(cols), [list(x) for x in rows])})
    return run_id


def optimize(ref: str | store.Prompt, cases: Any = None, *, search: Any = ("system", "fewshot", "params"),
             budget: Any = 40, holdout: float = 0.3, models: list[str] | None = None,
             proposer: str | None = None, seed: int = 0, variables: dict[str, Any] | None = None,
             cache: bool = True, progress: Progress | bool | None = True,
             workspace: Workspace | None = None, source: str = "python") -> OptimizeResult:
    """Search system prompts, few-shot demos, parameters and models for prompt ``ref`` on ``cases``.

    ``search``: a subset of system, fewshot, params, model (a list or "a,b"); ``budget``: model
    calls (int) or {calls, tokens, seconds}; ``holdout``: the held-out fraction reported on;
    ``models``: candidate model URIs for ``model``. The plan and budget are printed before the
    first call. Returns an OptimizeResult (``.version``, ``.baseline_score``, ``.score``,
    ``.trials``, ``.diff``).
    """
    ws = workspace or get_workspace()
    p = plan(ref, cases, search=search, budget=budget, holdout=holdout, models=models, proposer=proposer,
             seed=seed, workspace=ws)
    if progress is not False:
        print(p.describe(), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    result = run_plan(p, progress=progress, variables=variables, cache=cache, workspace=ws, source=source)
    result.used.setdefault("wall_s", round(time.perf_counter() - t0, 2))
    return result
