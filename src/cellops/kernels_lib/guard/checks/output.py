"""Output checks: groundedness against retrieved chunks, JSON / JSON-schema validity, regex and
banned phrases, refusal detection, length.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..embed import TextCtx, encode, sentences
from ..report import Span, Verdict
from .base import Check, Opt, register

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]+")
_STOP = frozenset(
    "the a an and or but of to in on at for with by from as is are was were be been being this that "
    "these those it its they them their there here which who whom what when where why how not no yes "
    "can could would should will may might must do does did have has had than then also such into "
    "about over under more most some any each other only very just so".split())
MAX_CONTEXT_UNITS = 400  # bounded embedding work for long retrieved contexts


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 2 and w.lower() not in _STOP}


@register
class Groundedness(Check):
    name = "groundedness"
    help = ("each answer sentence must be supported by the retrieved chunks (MiniLM similarity or word "
            "overlap); threshold = minimum support per sentence; skipped when there is no context")
    rails = ("output",)
    options = {"min_words": Opt("int", 4, "shorter sentences are not checked")}
    default_threshold = 0.5
    default_action = "warn"
    needs_context = True
    stream = "sentence"

    def run(self, ctx: TextCtx) -> Verdict:
        if not ctx.context:
            return Verdict(0.0, False, "skipped", reason="no retrieved context to check against")
        units = [ctx.text[s:e] for s, e in sentences(ctx.text)]
        spans_all = sentences(ctx.text)
        checked = [(sp, u) for sp, u in zip(spans_all, units, strict=False) if len(_WORD.findall(u)) >= self.opts["min_words"]]
        if not checked:
            return Verdict(0.0, False, "grounded", reason="no sentence long enough to check")
        ctx_units = [c[s:e] for c in ctx.context for s, e in sentences(c)][:MAX_CONTEXT_UNITS] or [""]
        ctx_words = _content_words(" ".join(ctx.context))
        sims = encode([u for _, u in checked]) @ encode(ctx_units).T
        support = []
        for i, (_, u) in enumerate(checked):
            words = _content_words(u)
            overlap = len(words & ctx_words) / len(words) if words else 1.0
            support.append(max(float(sims[i].max()), overlap))
        bad = [(sp, s) for (sp, _), s in zip(checked, support, strict=False) if s < self.threshold]
        worst = min(support)
        return Verdict(
            1.0 - worst, bool(bad), "ungrounded" if bad else "grounded",
            [Span(s, e, f"support {sup:.2f}") for (s, e), sup in bad],
            f"{len(bad)} of {len(checked)} sentences below support {self.threshold:.2f}" if bad
            else f"all {len(checked)} sentences supported (min {worst:.2f})",
            {"support": [round(s, 3) for s in support]},
        )


@register
class JsonValid(Check):
    name = "json"
    help = "the text must be valid JSON, optionally matching a JSON schema (inline mapping or file path)"
    rails = ("output",)
    options = {
        "schema": Opt("any", None, "a JSON schema (mapping) or the path of a .json schema file"),
        "extract": Opt("bool", True, "accept JSON inside a ```json fence or surrounding prose"),
    }
    default_threshold = 0.5

    def setup(self) -> None:
        schema = self.opts["schema"]
        if isinstance(schema, str):
            try:
                schema = json.loads(Path(schema).expanduser().read_text())
            except (OSError, json.JSONDecodeError) as e:
                from ...errors import InvalidInputError

                raise InvalidInputError(f"json: cannot read schema {self.opts['schema']}: {e}") from None
        if schema is not None:
            import jsonschema

            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as e:
                from ...errors import InvalidInputError

                raise InvalidInputError(f"json: the schema is not a valid JSON schema: {e.message}") from None
            self.validator: Any = jsonschema.Draft202012Validator(schema)
        else:
            self.validator = None

    def _parse(self, text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            if not self.opts["extract"]:
                raise
        fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
        if fence:
            return json.loads(fence.group(1))
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        if start < 0:
            raise json.JSONDecodeError("no JSON object or array found", text, 0)
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
        return obj

    def run(self, ctx: TextCtx) -> Verdict:
        try:
            obj = self._parse(ctx.text)
        except json.JSONDecodeError as e:
            return Verdict(1.0, True, "invalid_json", reason=f"not valid JSON: {e.msg} at char {e.pos}")
        if self.validator is not None:
            errors = sorted(self.validator.iter_errors(obj), key=lambda e: list(e.path))
            if errors:
                where = "/".join(map(str, errors[0].path)) or "(root)"
                return Verdict(1.0, True, "schema", reason=f"{where}: {errors[0].message}",
                               detail={"errors": len(errors)})
        return Verdict(0.0, False, "valid")


@register
class Regex(Check):
    name = "regex"
    help = "flags (or redacts) matches of the given regular expressions"
    options = {
        "patterns": Opt("str_list", [], "regular expressions (Python syntax)"),
        "ignore_case": Opt("bool", True, "case-insensitive matching"),
        "label": Opt("str", "REGEX", "placeholder label used when redacting"),
    }
    default_threshold = 0.5
    can_redact = True
    stream = "window"

    def setup(self) -> None:
        from ...errors import InvalidInputError

        if not self.opts["patterns"]:
            raise InvalidInputError("regex: give at least one pattern in 'patterns'")
        flags = re.IGNORECASE if self.opts["ignore_case"] else 0
        self.compiled = []
        for p in self.opts["patterns"]:
            try:
                self.compiled.append(re.compile(p, flags))
            except re.error as e:
                raise InvalidInputError(f"regex: pattern {p!r} does not compile: {e}") from None

    def run(self, ctx: TextCtx) -> Verdict:
        label = self.opts["label"] or "REGEX"
        spans = [Span(m.start(), m.end(), label) for rx in self.compiled for m in rx.finditer(ctx.text) if m.end() > m.start()]
        return Verdict(1.0 if spans else 0.0, bool(spans), label if spans else "", spans,
                       f"{len(spans)} match(es)" if spans else "")


@register
class Banned(Regex):
    name = "banned"
    help = "flags (or redacts) banned words and phrases (whole words, case-insensitive)"
    options = {
        "phrases": Opt("str_list", [], "words or phrases"),
        "label": Opt("str", "BANNED", "placeholder label used when redacting"),
    }

    def setup(self) -> None:
        from ...errors import InvalidInputError

        if not self.opts["phrases"]:
            raise InvalidInputError("banned: give at least one entry in 'phrases'")
        self.compiled = [re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, p.split())) + r"(?!\w)", re.IGNORECASE)
                         for p in self.opts["phrases"] if p.strip()]


_REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:'|no)t|cannot|won'?t|am unable|'m unable)|"
    r"I (?:can(?:'|no)t|cannot|won'?t|will not|am not able to|'m not able to) (?:help|assist|provide|comply|"
    r"do that|fulfil|fulfill|create|write|share|answer)|as an ai(?: language model)?,? I (?:can(?:'|no)t|"
    r"cannot|don'?t|do not)|I must (?:decline|refuse)|(?:this|that|your) request (?:is|goes) against|"
    r"I'm not (?:comfortable|permitted|allowed))", re.IGNORECASE)


@register
class Refusal(Check):
    name = "refusal"
    help = "detects a model refusal (\"I'm sorry, but I can't...\"); useful as a log/warn signal"
    rails = ("output",)
    default_threshold = 0.5
    default_action = "log"

    def run(self, ctx: TextCtx) -> Verdict:
        m = _REFUSAL.search(ctx.text[:4000])
        if not m:
            return Verdict(0.0, False)
        return Verdict(1.0, True, "refusal", [Span(m.start(), m.end(), "refusal")], f"refusal: {m.group(0)!r}")


@register
class Length(Check):
    name = "length"
    help = "bounds on characters and words (max_chars also bounds what the other checks read)"
    options = {
        "min_chars": Opt("int", None, "fewest characters"), "max_chars": Opt("int", None, "most characters"),
        "min_words": Opt("int", None, "fewest words"), "max_words": Opt("int", None, "most words"),
    }
    default_threshold = 0.5
    stream = "full"

    def run(self, ctx: TextCtx) -> Verdict:
        o, n = self.opts, len(ctx.text)
        words = len(ctx.text.split()) if (o["min_words"] or o["max_words"]) else 0
        problems = []
        if o["max_chars"] is not None and n > o["max_chars"]:
            problems.append(f"{n} chars > max {o['max_chars']}")
        if o["min_chars"] is not None and n < o["min_chars"]:
            problems.append(f"{n} chars < min {o['min_chars']}")
        if o["max_words"] is not None and words > o["max_words"]:
            problems.append(f"{words} words > max {o['max_words']}")
        if o["min_words"] is not None and words < o["min_words"]:
            problems.append(f"{words} words < min {o['min_words']}")
        return Verdict(1.0 if problems else 0.0, bool(problems), "length" if problems else "",
                       reason="; ".join(problems), detail={"chars": n})
