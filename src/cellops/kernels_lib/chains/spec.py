"""Chain specs: YAML text or a dict -> a validated :class:`ChainSpec`.

Everything is checked before anything runs or is saved: the YAML itself, known step types,
required and allowed keys and their types, template syntax, and references (a step reads only the
chain's inputs and *earlier* steps; a reference to itself or to a later step that reads it back is
reported as a cycle). Every problem is ONE line naming the step and the key.

```yaml
inputs: {question: ~}            # name: default (~ = required); or a list of names
model: default                   # model of the model steps (a step's own model: wins)
steps:
  hits:   {rag: docs, query: "{{ inputs.question }}", k: 3}
  answer: {prompt: qa@2, vars: {context: "{{ steps.hits.output }}"}}
output: "{{ steps.answer.output }}"
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes

from ..errors import InvalidInputError
from ..prompts import template as tpl

TOP_KEYS = {"description", "inputs", "model", "steps", "output", "tests"}
COMMON_KEYS = {"when", "description"}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEXT, MAP, INT, LIST_OR_TEXT, ANY = "text", "mapping", "integer", "list or text", "any"


@dataclass(frozen=True)
class StepType:
    kind: str  # the span kind: llm, retriever, guard, tool, step
    arg: str  # what the type key holds (TEXT, LIST_OR_TEXT)
    required: dict[str, str] = field(default_factory=dict)  # key -> value type
    optional: dict[str, str] = field(default_factory=dict)
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


GEN = {"model": TEXT, "params": MAP, "system": TEXT}
TYPES: dict[str, StepType] = {
    "prompt": StepType("llm", TEXT, optional={"vars": MAP, "model": TEXT, "params": MAP}),
    "generate": StepType("llm", TEXT, optional=GEN),
    "rag": StepType("retriever", TEXT, {"query": TEXT},
                    {"mode": TEXT, "k": INT, "search": TEXT, "prompt": TEXT, "model": TEXT, "params": MAP},
                    {"mode": ("retrieve", "ask"), "search": ("dense", "bm25", "hybrid")}),
    "guard": StepType("guard", TEXT, {"input": ANY}, {"rail": TEXT, "action": TEXT},
                      {"rail": ("input", "output"), "action": ("block", "redact")}),
    "python": StepType("step", TEXT, optional={"args": MAP}),
    "tool": StepType("tool", LIST_OR_TEXT, {"input": TEXT}, {**GEN, "tool_choice": TEXT}),
    "map": StepType("step", TEXT, {"step": MAP}, {"as": TEXT}),
}


@dataclass(frozen=True)
class StepSpec:
    name: str
    type: str
    arg: Any  # the value of the type key: prompt ref, template, index, policy, function(s)...
    options: dict[str, Any]  # the step's other keys
    when: str | None = None
    reads: tuple[str, ...] = ()  # earlier steps it reads
    sub: StepSpec | None = None  # map: the step run per item

    @property
    def kind(self) -> str:
        return TYPES[self.type].kind

    @property
    def label(self) -> str:
        arg = self.arg if isinstance(self.arg, str) else ", ".join(map(str, self.arg))
        return f"{self.type} {arg}" if self.type not in ("generate", "map") else self.type


@dataclass(frozen=True)
class ChainSpec:
    steps: tuple[StepSpec, ...]
    inputs: dict[str, Any]  # name -> default (None: required)
    required: tuple[str, ...]
    output: Any  # a template / expression, or None: the last step's output
    model: str | None
    tests: list[dict[str, Any]]
    description: str
    doc: dict[str, Any]  # the parsed spec as written: what is hashed and stored

    def step(self, name: str) -> StepSpec:
        return next(s for s in self.steps if s.name == name)


def _fail(where: str, problem: str) -> InvalidInputError:
    return InvalidInputError(f"{where}: {problem}")


def load_yaml(text: str, chain: str) -> dict[str, Any]:
    """Parse the YAML body; a syntax error or a key given twice names its line and the step/key."""
    import yaml

    from ..yamlsafe import DuplicateKeyError, safe_load

    try:
        doc = safe_load(text)
    except DuplicateKeyError as e:  # safe_load would keep the last one and drop a step silently
        place = _yaml_place(text, e.line - 1)
        what = "" if place.endswith(f"'{e.key}'") else f"key '{e.key}' is "
        raise _fail(f"chain {chain}{place}",
                    f"{what}defined twice (lines {e.first_line} and {e.line}); keep one") from None
    except yaml.YAMLError as e:
        problem_mark = getattr(e, "problem_mark", None)
        context_mark = getattr(e, "context_mark", None)
        mark = context_mark or problem_mark  # where the unclosed mapping / list began, if any
        line = mark.line if mark is not None else 0
        at = problem_mark.line + 1 if problem_mark is not None else line + 1
        began = f" (in what began on line {line + 1})" if context_mark is not None and line + 1 != at else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise _fail(f"chain {chain}{_yaml_place(text, line)}",
                    f"malformed YAML on line {at}{began}: {problem}; check the indentation, "
                    "brackets and quotes") from None
    if doc is None:
        raise _fail(f"chain {chain}", "the body is empty; it needs a 'steps:' mapping")
    if not isinstance(doc, dict):
        raise _fail(f"chain {chain}", f"the body must be a YAML mapping with 'steps:', got {type(doc).__name__}")
    return doc


_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][\w.-]*)\s*:")


def _yaml_place(text: str, line: int) -> str:
    """', step NAME, key KEY' for the line a YAML error is on (by indentation), or ''."""
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines()[: line + 1]:
        m = _KEY_LINE.match(raw)
        if not m:
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
    names = [n for _, n in stack]
    if len(names) >= 2 and names[0] == "steps":
        key = f", key '{names[2]}'" if len(names) >= 3 else ""
        return f", step '{names[1]}'{key}"
    return f", key '{names[0]}'" if names else ""


def parse(source: str | dict[str, Any], chain: str = "chain") -> ChainSpec:
    """Validate a whole chain spec (YAML text or dict); raises InvalidInputError naming the problem."""
    doc = load_yaml(source, chain) if isinstance(source, str) else source
    if not isinstance(doc, dict):
        raise _fail(f"chain {chain}", "a chain spec is a mapping with 'steps:'")
    where = f"chain {chain}"
    unknown = sorted(set(map(str, doc)) - TOP_KEYS)
    if unknown:
        raise _fail(where, f"unknown top-level key(s) {', '.join(unknown)}; valid: {', '.join(sorted(TOP_KEYS))}")
    inputs = _inputs(doc.get("inputs"), where)
    raw_steps = doc.get("steps")
    items = _step_items(raw_steps, where)
    steps: list[StepSpec] = []
    names = [n for n, _ in items]
    for i, (name, body) in enumerate(items):
        step = _step(name, body, where, local=set())
        _check_reads(step, names[:i], names, items, inputs, where)
        steps.append(step)
    output = doc.get("output")
    if output is not None:
        reads, _ = _template_reads(output, f"{where}, key 'output'", set())
        for r in reads:
            if r not in names:
                raise _fail(f"{where}, key 'output'", f"refers to steps.{r}, which does not exist; steps: {', '.join(names)}")
    model = doc.get("model")
    if model is not None and not isinstance(model, str):
        raise _fail(f"{where}, key 'model'", "must be a model URI (text)")
    tests = doc.get("tests") or []
    if not isinstance(tests, list):
        raise _fail(f"{where}, key 'tests'", "must be a list of {vars, assert} cases")
    required = tuple(n for n, d in inputs.items() if d is None) if "inputs" in doc else tuple(
        sorted({r for s in steps for r in _input_reads(s)}))
    return ChainSpec(tuple(steps), inputs, required, output, model, tests,
                     str(doc.get("description") or ""), doc)


def _inputs(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        out = dict.fromkeys(value)
    elif isinstance(value, dict):
        out = {str(k): v for k, v in value.items()}
    else:
        raise _fail(f"{where}, key 'inputs'", "must be a list of names or a mapping name: default (~ = required)")
    for n in out:
        if not NAME_RE.match(n):
            raise _fail(f"{where}, key 'inputs'", f"bad input name {n!r}: use a Python identifier")
    return out


def _step_items(raw: Any, where: str) -> list[tuple[str, Any]]:
    if isinstance(raw, dict):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        items = []
        for i, s in enumerate(raw, start=1):
            if not isinstance(s, dict) or not isinstance(s.get("name"), str):
                raise _fail(f"{where}, step {i}", "a step in a list needs 'name:' (or write steps as a mapping)")
            items.append((s["name"], {k: v for k, v in s.items() if k != "name"}))
    else:
        raise _fail(f"{where}, key 'steps'", "needs a mapping of step name -> {TYPE: ..., ...}")
    if not items:
        raise _fail(f"{where}, key 'steps'", "the chain has no steps")
    seen: set[str] = set()
    for name, _ in items:
        if not NAME_RE.match(name):
            raise _fail(f"{where}, step '{name}'", "bad step name: use letters, digits and _ (no dots or dashes)")
        if name in seen:
            raise _fail(f"{where}, step '{name}'", "this step name is used twice")
        seen.add(name)
    return items


def _step(name: str, body: Any, where: str, local: set[str]) -> StepSpec:
    here = f"{where}, step '{name}'"
    if not isinstance(body, dict):
        raise _fail(here, f"must be a mapping with one step type ({', '.join(TYPES)}), got {body!r}")
    kinds = [k for k in body if k in TYPES]
    if len(kinds) > 1:  # a key that names a type can be another type's option (rag's prompt:)
        owners = [k for k in kinds if set(kinds) - {k} <= {*TYPES[k].required, *TYPES[k].optional}]
        kinds = owners if len(owners) == 1 else kinds
    if len(kinds) != 1:
        known = {k for t in TYPES.values() for k in (*t.required, *t.optional)} | COMMON_KEYS
        odd = [str(k) for k in body if k not in known and k not in TYPES]
        problem = (f"has more than one step type ({', '.join(kinds)})" if kinds else
                   f"unknown step type '{odd[0]}'" if odd else "has no step type")
        raise _fail(here, f"{problem}; valid types: {', '.join(TYPES)}")
    t = TYPES[kinds[0]]
    allowed = {kinds[0], *t.required, *t.optional, *COMMON_KEYS}
    for key in body:
        if key not in allowed:
            raise _fail(f"{here}, key '{key}'", f"unknown key for a {kinds[0]} step; valid: {', '.join(sorted(allowed))}")
    for key in t.required:
        if key not in body:
            raise _fail(f"{here}, key '{key}'", f"missing: a {kinds[0]} step needs '{key}:'")
    _check_type(f"{here}, key '{kinds[0]}'", body[kinds[0]], t.arg)
    for key, typ in (t.required | t.optional).items():
        if key in body:
            _check_type(f"{here}, key '{key}'", body[key], typ)
            if key in t.choices and body[key] not in t.choices[key]:
                raise _fail(f"{here}, key '{key}'", f"{body[key]!r} is not one of {', '.join(t.choices[key])}")
    if "params" in body:
        _check_params(f"{here}, key 'params'", body["params"])
    when = body.get("when")
    if when is not None and not isinstance(when, str | bool):
        raise _fail(f"{here}, key 'when'", "must be an expression such as \"steps.check.output.allowed\"")
    options = {k: v for k, v in body.items() if k not in (kinds[0], "when", "description")}
    sub = None
    if kinds[0] == "map":
        var = body.get("as", "item")
        if not NAME_RE.match(var) or var in ("inputs", "steps"):
            raise _fail(f"{here}, key 'as'", f"bad variable name {var!r}: use an identifier other than inputs/steps")
        sub = _step(f"{name}.step", body["step"], where, local | {var, "index"})
        if sub.type == "map":
            raise _fail(f"{here}, key 'step'", "a map step cannot run another map step; use a python step")
    reads = _reads_of(name, body, here, local)
    if sub is not None:
        reads = tuple(dict.fromkeys(reads + sub.reads))
    return StepSpec(name, kinds[0], body[kinds[0]], options, when if isinstance(when, str) else
                    (None if when is None else str(when).lower()), reads, sub)


def _check_type(where: str, value: Any, typ: str) -> None:
    ok = {TEXT: isinstance(value, str) and value.strip() != "",
          MAP: isinstance(value, dict),
          INT: isinstance(value, int) and not isinstance(value, bool) and value >= 1,
          LIST_OR_TEXT: (isinstance(value, str) and value.strip() != "") or (
              isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)),
          ANY: value is not None}[typ]
    if not ok:
        want = {INT: "a positive integer", TEXT: "non-empty text", MAP: "a mapping"}.get(typ, typ)
        raise _fail(where, f"must be {want}, got {value!r}")


def _check_params(where: str, params: dict[str, Any]) -> None:
    from ..models.base import GenParams

    try:
        GenParams.from_dict({k: v for k, v in params.items() if k != "model"})
    except InvalidInputError as e:
        raise _fail(where, str(e)) from None


def _strings(value: Any, key: str) -> list[tuple[str, str]]:
    """(key path, text) for every string inside a step value (vars, args, nested lists)."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _strings(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _strings(v, f"{key}[{i}]")]
    return []


TEMPLATED = {"query", "input", "vars", "args", "system", "map", "generate", "when"}


def _reads_of(name: str, body: dict[str, Any], here: str, local: set[str]) -> tuple[str, ...]:
    reads: list[str] = []
    for key in body:
        if key not in TEMPLATED:
            continue
        for path, text in _strings(body[key], str(key)):
            source = text if key != "when" or "{{" in text else "{{ " + text + " }}"
            got, _ = _template_reads(source, f"{here}, key '{path}'", local)
            reads += got
    return tuple(dict.fromkeys(reads))


def _template_reads(text: Any, where: str, local: set[str],
                    strict: bool = True) -> tuple[list[str], set[str]]:
    """(steps read, inputs read) by a template; unknown names fail here, naming ``where``."""
    if not isinstance(text, str):
        return [], set()
    try:
        tree = tpl.parse(text)
    except InvalidInputError as e:
        raise _fail(where, str(e)) from None
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    unknown = sorted(names - assigned - local - {"inputs", "steps"})
    if unknown and strict:
        u = unknown[0]
        raise _fail(where, f"unknown name '{u}' in the template; write {{{{ inputs.{u} }}}} for an input "
                           "or {{ steps.NAME.output }} for an earlier step's output")
    steps: list[str] = []
    inputs: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = node.node
        if not isinstance(base, nodes.Name) or base.name not in ("steps", "inputs"):
            continue
        key = node.attr if isinstance(node, nodes.Getattr) else (
            node.arg.value if isinstance(node.arg, nodes.Const) else None)
        if key is None:
            raise _fail(where, f"{base.name}[...] needs a literal name, e.g. {base.name}.NAME")
        (steps.append if base.name == "steps" else inputs.add)(str(key))
    return steps, inputs


def _input_reads(step: StepSpec) -> set[str]:
    out: set[str] = set()
    body = {**step.options, step.type: step.arg, **({"when": step.when} if step.when else {})}
    for key in TEMPLATED & set(body):
        for _, text in _strings(body[key], key):
            source = text if key != "when" or "{{" in text else "{{ " + text + " }}"
            out |= _template_reads(source, "", set(), strict=False)[1]
    if step.sub is not None:
        out |= _input_reads(step.sub)
    return out


def _check_reads(step: StepSpec, earlier: list[str], names: list[str], items: list[tuple[str, Any]],
                 inputs: dict[str, Any], where: str) -> None:
    here = f"{where}, step '{step.name}'"
    for r in step.reads:
        if r in earlier:
            continue
        if r not in names:
            raise _fail(here, f"refers to steps.{r}, which does not exist; earlier steps: "
                              f"{', '.join(earlier) or '(none: this is the first step)'}")
        cycle = _cycle(step.name, r, items)
        if cycle:
            raise _fail(here, f"steps form a cycle: {' -> '.join(cycle)}; a step can only read earlier steps")
        raise _fail(here, f"refers to steps.{r}, which comes later; move '{r}' above '{step.name}'")
    if inputs:
        unknown = sorted(_input_reads(step) - set(inputs))
        if unknown:
            raise _fail(here, f"reads inputs.{unknown[0]}, which the chain does not declare; "
                              f"its inputs: {', '.join(inputs)}")


def _cycle(start: str, first: str, items: list[tuple[str, Any]]) -> list[str] | None:
    """The read path start -> first -> ... -> start, if there is one (reads taken textually)."""
    bodies = dict(items)
    if first == start:
        return [start, start]

    def reads(name: str) -> list[str]:
        body = bodies.get(name)
        if not isinstance(body, dict):
            return []
        found = re.findall(r"steps\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*['\"]([A-Za-z_]\w*)['\"]\s*\])", str(body))
        return [a or b for a, b in found]

    path, seen = [start, first], {first}
    stack = [(first, iter(reads(first)))]
    while stack:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            stack.pop()
            path.pop()
            continue
        if nxt == start:
            return [*path, start]
        if nxt not in seen and nxt in bodies:
            seen.add(nxt)
            path.append(nxt)
            stack.append((nxt, iter(reads(nxt))))
    return None
