"""Assertions on a model output (promptfoo's names and YAML shape).

``{"type": "contains", "value": "Paris"}``; every type has a ``not-`` form. Types:
equals · contains · icontains · contains-any · contains-all · icontains-any · icontains-all ·
starts-with · regex · is-json (``value``: optional JSON schema) · max-length (characters) ·
latency (``threshold`` in milliseconds) · similar (embedding cosine to ``value`` >= ``threshold``,
default 0.75; ``embedder`` optional) · llm-rubric (a grader model, any URI in ``model``, judges
the output against the rubric in ``value``).

``validate`` runs before any model call so a malformed assertion is named up front.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InvalidInputError
from ..models.base import Generation, GenParams
from ..workspace import Workspace

TYPES = ("equals", "contains", "icontains", "contains-any", "contains-all", "icontains-any",
         "icontains-all", "starts-with", "regex", "is-json", "max-length", "latency", "similar",
         "llm-rubric")
ALIASES = {"model-graded-rubric": "llm-rubric", "rubric": "llm-rubric", "max_length": "max-length"}
KEYS = {"type", "value", "threshold", "model", "embedder", "description"}
DEFAULT_SIMILAR = 0.75
RUBRIC_SYSTEM = ("You are a strict grader. Read the rubric and the output. Reply with PASS if the "
                 "output satisfies the rubric, otherwise FAIL, then one short sentence why.")


@dataclass
class Check:
    """The result of one assertion on one output."""

    type: str  # as written, e.g. "not-contains"
    value: Any
    passed: bool
    reason: str
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        if self.value is None:
            return self.type
        if isinstance(self.value, int | float) and not isinstance(self.value, bool):
            return f"{self.type} {self.value}"
        v = self.value if isinstance(self.value, str) else json.dumps(self.value)
        return f"{self.type} {(v if len(v) <= 40 else v[:39] + '…')!r}"


def _split(t: str) -> tuple[str, bool]:
    negate = t.startswith("not-")
    base = t[4:] if negate else t
    return ALIASES.get(base, base), negate


def validate(a: Any, where: str) -> dict[str, Any]:
    """Check one assertion's shape; raise InvalidInputError naming ``where`` and the problem."""
    if not isinstance(a, dict) or not isinstance(a.get("type"), str):
        raise InvalidInputError(f"{where}: an assertion is a mapping with a 'type', got {a!r}")
    t = a["type"]
    base, _ = _split(t)
    if base not in TYPES:
        raise InvalidInputError(f"{where}: unknown assertion type '{t}'; use one of {', '.join(TYPES)} "
                                "(or not-<type>)")
    extra = sorted(set(a) - KEYS)
    if extra:
        raise InvalidInputError(f"{where} ({t}): unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(KEYS))}")
    v = a.get("value")
    problem = _problem(base, v, a)
    if problem:
        raise InvalidInputError(f"{where} ({t}): {problem}")
    return a


def _problem(base: str, v: Any, a: dict[str, Any]) -> str | None:
    if base in ("equals", "contains", "icontains", "starts-with", "regex", "llm-rubric"):
        if v is None or isinstance(v, dict | list) or (isinstance(v, str) and not v):
            return "needs a text 'value'"
        if base == "regex":
            try:
                re.compile(str(v))
            except re.error as e:
                return f"'value' is not a valid regular expression ({e})"
    elif base.endswith(("-any", "-all")):
        items = _items(v)
        if not items:
            return "needs a non-empty list 'value' (or comma-separated text)"
    elif base == "is-json":
        if v is not None:
            if not isinstance(v, dict):
                return "'value' must be a JSON schema object (or left out)"
            from jsonschema.exceptions import SchemaError
            from jsonschema.validators import validator_for

            try:
                validator_for(v).check_schema(v)
            except SchemaError as e:
                return f"'value' is not a valid JSON schema ({e.message})"
    elif base == "max-length":
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            return "needs a positive integer 'value' (characters)"
    elif base == "latency":
        t = a.get("threshold", v)
        if not isinstance(t, int | float) or isinstance(t, bool) or t <= 0:
            return "needs a positive 'threshold' in milliseconds"
    elif base == "similar":
        if not _items(v):
            return "needs a reference text 'value' (or a list of them)"
    if "threshold" in a:
        t = a["threshold"]
        if base not in ("similar", "latency"):
            return "'threshold' only applies to similar and latency"
        if base == "similar" and not (isinstance(t, int | float) and -1 <= t <= 1):
            return "'threshold' is a cosine similarity between -1 and 1"
    if "model" in a and (base != "llm-rubric" or not isinstance(a["model"], str)):
        return "'model' (a model URI) only applies to llm-rubric"
    return None


def _items(v: Any) -> list[str]:
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()] if "," in v else ([v] if v else [])
    if isinstance(v, list) and v and all(isinstance(x, str | int | float) for x in v):
        return [str(x) for x in v]
    return []


def validate_cases(cases: list[Any]) -> None:
    """Validate every assertion of every case (``case.asserts`` or ``{'assert': [...]}``)."""
    for i, case in enumerate(cases, start=1):
        asserts = case.asserts if hasattr(case, "asserts") else (case or {}).get("assert", [])
        number = getattr(case, "number", i)
        for j, a in enumerate(asserts or [], start=1):
            validate(a, f"test case {number}, assertion {j}")


# -- evaluation ----------------------------------------------------------------------------------

Grader = Callable[[str, str, str], str]  # (model URI, rubric, output) -> grader text


def evaluate(a: dict[str, Any], output: str, gen: Generation | None, *,
             workspace: Workspace | None = None, grader: Grader | None = None) -> Check:
    t = a["type"]
    base, negate = _split(t)
    v = a.get("value")
    passed, reason, score = _EVAL[base](a, v, output, gen, workspace, grader)
    if negate:
        passed, reason = not passed, f"not: {reason}"
    return Check(t, v if base != "latency" else a.get("threshold", v), passed, reason, score)


Result = tuple[bool, str, float | None]


def _contains(fold: bool, mode: str) -> Callable[..., Result]:
    def check(a: dict[str, Any], v: Any, out: str, *_: Any) -> Result:
        hay = out.lower() if fold else out
        items = _items(v) if mode != "one" else [str(v)]
        found = [s for s in items if (s.lower() if fold else s) in hay]
        ok = bool(found) if mode in ("one", "any") else len(found) == len(items)
        missing = [s for s in items if s not in found]
        return ok, (f"found {found}" if ok and mode != "all" else
                    "found all" if ok else f"missing {missing}"), None
    return check


def _equals(a: dict[str, Any], v: Any, out: str, *_: Any) -> Result:
    ok = out.strip() == str(v).strip()
    return ok, "equal" if ok else f"output is {out.strip()[:60]!r}", None


def _starts(a: dict[str, Any], v: Any, out: str, *_: Any) -> Result:
    ok = out.lstrip().startswith(str(v))
    return ok, "starts with it" if ok else f"starts with {out.lstrip()[:30]!r}", None


def _regex(a: dict[str, Any], v: Any, out: str, *_: Any) -> Result:
    m = re.search(str(v), out)
    return m is not None, f"matched {m.group(0)[:40]!r}" if m else "no match", None


def _json_text(out: str) -> str:
    s = out.strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", s, re.S)  # models like to fence JSON
    return fence.group(1) if fence else s


def _is_json(a: dict[str, Any], v: Any, out: str, *_: Any) -> Result:
    try:
        doc = json.loads(_json_text(out))
    except json.JSONDecodeError as e:
        return False, f"not JSON ({e.msg} at char {e.pos})", None
    if v is None:
        return True, "valid JSON", None
    from jsonschema.validators import validator_for

    errors = sorted(validator_for(v)(v).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(root)"
        return False, f"schema: {where}: {errors[0].message}", None
    return True, "valid JSON matching the schema", None


def _max_length(a: dict[str, Any], v: Any, out: str, *_: Any) -> Result:
    return len(out) <= int(v), f"{len(out)} characters (max {v})", float(len(out))


def _latency(a: dict[str, Any], v: Any, out: str, gen: Generation | None, *_: Any) -> Result:
    if gen is None:
        return False, "no model call was made (blocked by the guard)", None
    ms = gen.latency_s * 1000
    limit = float(a.get("threshold", v))
    return ms <= limit, f"{ms:.0f} ms (max {limit:.0f} ms)", ms


def _similar(a: dict[str, Any], v: Any, out: str, *_: Any) -> Result:
    from ..models import get_embedder

    refs = [v] if isinstance(v, str) else _items(v)
    emb = get_embedder(a.get("embedder") or "default")
    vecs = emb.encode([out, *refs])
    score = float(max(vecs[1:] @ vecs[0]))
    threshold = float(a.get("threshold", DEFAULT_SIMILAR))
    return score >= threshold, f"cosine {score:.3f} (min {threshold})", score


def _rubric(a: dict[str, Any], v: Any, out: str, gen: Generation | None,
            ws: Workspace | None, grader: Grader | None) -> Result:
    from ..models.tasks import model_for

    model = model_for("judge", a.get("model"))
    text = (grader or default_grader(ws))(model, str(v), out)
    verdict = parse_verdict(text)
    if verdict is None:
        return False, f"grader {model} gave no PASS/FAIL: {text.strip()[:80]!r}", None
    return verdict, f"grader {model}: {text.strip()[:120]}", 1.0 if verdict else 0.0


def parse_verdict(text: str) -> bool | None:
    """The grader's first PASS/FAIL word (or a JSON {"pass": bool}); None if it gave neither."""
    s = text.strip()
    if s.startswith("{"):
        try:
            d = json.loads(s)
            if isinstance(d, dict) and isinstance(d.get("pass"), bool):
                return d["pass"]
        except json.JSONDecodeError:
            pass
    m = re.search(r"\b(PASS|FAIL)(?:ED|ES)?\b", s, re.I)
    return None if m is None else m.group(1).upper() == "PASS"


def default_grader(ws: Workspace | None, llm_for: Callable[[str], Any] | None = None) -> Grader:
    """A grader that asks a model (any URI) through the response cache, greedy. ``llm_for``
    (model URI -> LLM) replaces how the grader model is loaded (the optimizer meters it)."""
    from ..models import get_llm
    from ..workspace import get_workspace
    from .cache import CachedLLM

    workspace = ws or get_workspace()

    def grade(model: str, rubric: str, output: str) -> str:
        llm = llm_for(model) if llm_for is not None else CachedLLM(get_llm(model, workspace), workspace)
        messages = [{"role": "system", "content": RUBRIC_SYSTEM},
                    {"role": "user", "content": f"Rubric: {rubric}\n\nOutput:\n{output}\n\n"
                                                "Does the output satisfy the rubric? Answer PASS or FAIL."}]
        return llm.generate(messages, GenParams(temperature=0.0, max_tokens=48)).text

    return grade


_EVAL: dict[str, Callable[..., Result]] = {
    "equals": _equals, "contains": _contains(False, "one"), "icontains": _contains(True, "one"),
    "contains-any": _contains(False, "any"), "contains-all": _contains(False, "all"),
    "icontains-any": _contains(True, "any"), "icontains-all": _contains(True, "all"),
    "starts-with": _starts, "regex": _regex, "is-json": _is_json, "max-length": _max_length,
    "latency": _latency, "similar": _similar, "llm-rubric": _rubric,
}
