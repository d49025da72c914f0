"""Policies: load (built-in, saved version, or YAML), run the rails, redact, watch streams.

A check that crashes fails closed when its action is ``block`` (the text is blocked with a
message naming the check) and is reported as an error otherwise. Loaded policies are cached per
process by content hash, so ``active_policy`` on every call costs one SQLite read.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, NotFoundError, WorkspaceError
from ..workspace import CorruptVersion, Workspace, content_hash, get_workspace
from . import schema
from .checks import Check, checks
from .embed import TextCtx, sentences
from .report import Finding, Report, Span, Verdict

BUILTIN_DIR = Path(__file__).parent / "builtin"
BUILTINS = ("default", "strict")
KIND = "guard"
_cache: dict[tuple[str, str], Policy] = {}
_cache_lock = threading.Lock()


class Policy:
    """A loaded policy: validated spec + instantiated checks per rail."""

    def __init__(self, spec: schema.PolicySpec, ref: str, ws: Workspace | None = None) -> None:
        self.spec, self.ref, self.ws = spec, ref, ws
        self.hash = content_hash(spec.to_dict())
        self.rails: dict[str, list[tuple[schema.CheckSpec, Check]]] = {}
        for rail, items in spec.rails.items():
            self.rails[rail] = [(c, checks.get(c.check)(c.options, c.threshold, ws)) for c in items]

    @property
    def name(self) -> str:
        return self.ref.split("@")[0]

    def __repr__(self) -> str:
        rails = "; ".join(f"{r}: {', '.join(c.id for c, _ in items)}" for r, items in self.rails.items() if items)
        return f"<guard policy {self.ref} ({self.hash[:10]}) {rails}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .views import policy_bundle

        return policy_bundle(self)

    def warm(self) -> None:
        """Do now what the first call would wait for: the cascades' judge prompts (a no-op for a
        policy without ``judge: true``)."""
        for items in self.rails.values():
            for _, check in items:
                cascade = getattr(check, "cascade", None)
                if cascade is not None:
                    cascade.warm()

    # -- rails ----------------------------------------------------------------------------------
    def check_input(self, text: str) -> Report:
        return self.run_rail("input", text)

    def check_output(self, text: str, context: list[str] | None = None) -> Report:
        return self.run_rail("output", text, context)

    def check_retrieval(self, chunks: list[str]) -> list[Report]:
        """One report per retrieved chunk; a chunk whose report is not allowed should be dropped."""
        return [self.run_rail("retrieval", c) for c in chunks]

    def stream_checker(self, context: list[str] | None = None) -> StreamChecker:
        return StreamChecker(self, context)

    def run_rail(self, rail: str, text: Any, context: list[str] | None = None,
                 items: list[tuple[schema.CheckSpec, Check]] | None = None) -> Report:
        text = coerce_text(text)
        report = Report(rail, self.ref, text, text)
        if len(text) > self.spec.max_chars:
            report.findings.append(Finding(
                "max_chars", "block", 1.0, True, "too_long",
                reason=f"text is {len(text)} chars, over this policy's max_chars {self.spec.max_chars}; "
                       "split it or raise max_chars"))
            return report
        ctx = TextCtx(text, rail, context)
        items = self.rails.get(rail, []) if items is None else items
        with single_threaded_blas():
            for spec, check in items:
                report.findings.append(self._run_check(spec, check, ctx, report))
        if ctx.embed_ms:
            report.latency_ms["embed"] = ctx.embed_ms
        _redact(report)
        return report

    def _run_check(self, spec: schema.CheckSpec, check: Check, ctx: TextCtx, report: Report) -> Finding:
        t0 = time.perf_counter()
        embed_before = ctx.embed_ms
        try:
            v: Verdict = check.run(ctx)
            err = None
        except Exception as e:  # a broken check must not let a text through a block rail
            v, err = Verdict(1.0 if spec.action == "block" else 0.0, spec.action == "block"), f"{type(e).__name__}: {e}"
        ms = (time.perf_counter() - t0) * 1000 - (ctx.embed_ms - embed_before)
        report.latency_ms[spec.id] = ms
        reason = v.reason
        if err is not None:
            reason = (f"check '{spec.id}' failed ({err}); failing closed" if spec.action == "block"
                      else f"check '{spec.id}' failed ({err})")
        return Finding(spec.id, spec.action, float(v.score), bool(v.triggered), v.label, list(v.spans),
                       reason, ms, err, v.detail)


_blas: Any = None


def single_threaded_blas() -> Any:
    """Context limiting numpy's BLAS to one thread while a rail runs. The checks' matrix products
    are tiny (exemplars x 384); with the default pool, BLAS threads left spinning after one product
    compete with ONNX Runtime's embedding threads and double a check's latency (7 -> 20 ms p50)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def coerce_text(text: Any) -> str:
    """str as is; bytes decoded (invalid bytes become U+FFFD, which the injection check sees);
    NUL bytes removed (they truncate text in C libraries downstream)."""
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise InvalidInputError(f"guard checks take text (str or bytes), got {type(text).__name__}")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


_LABEL_RE = re.compile(r"[^A-Z0-9]+")


def _redact(report: Report) -> None:
    """Replace spans of triggered ``redact`` findings with consistent placeholders."""
    spans = [s for f in report.findings if f.triggered and f.action == "redact" for s in f.spans]
    if not spans:
        return
    kept: list[Span] = []
    for s in sorted(spans, key=lambda s: (-(s.end - s.start), s.start)):
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    kept.sort(key=lambda s: s.start)
    text, numbers, by_value = report.original, {}, {}
    out, pos = [], 0
    for s in kept:
        value = text[s.start:s.end]
        label = _LABEL_RE.sub("_", s.label.upper()).strip("_") or "REDACTED"
        key = (label, value)
        if key not in by_value:
            numbers[label] = numbers.get(label, 0) + 1
            by_value[key] = f"<{label}_{numbers[label]}>"
            report.placeholders[by_value[key]] = value
        out += [text[pos:s.start], by_value[key]]
        pos = s.end
    out.append(text[pos:])
    report.text = "".join(out)


class StreamChecker:
    """Watches a streamed answer; ``feed`` returns a blocking report as soon as a ``block`` check
    fires. Cheap per token: pattern checks scan only the tail of the text, embedding checks run
    once per completed sentence, and the full answer is checked again at the end by the caller.

    ``release`` says what may be shown so far: with a ``redact`` check on the output rail, text is
    held back to the last complete sentence and shown redacted (placeholders numbered as in the
    final answer), so a streamed answer never shows a value that the final one hides.
    """

    WINDOW = 256  # chars re-scanned behind the new text (a PII value split across tokens)

    def __init__(self, policy: Policy, context: list[str] | None) -> None:
        self.policy, self.context = policy, context
        self.buf = ""
        self.scanned = 0  # window checks have seen buf[:scanned]
        self.sentence_end = 0  # sentence checks have seen buf[:sentence_end]
        items = [(c, k) for c, k in policy.rails.get("output", []) if c.action == "block"]
        self.window = [(c, k) for c, k in items if k.stream == "window"]
        self.sentence = [(c, k) for c, k in items if k.stream == "sentence"
                         and (not k.needs_context or context)]
        self.full = [(c, k) for c, k in items if k.stream == "full"]
        self.redact = [(c, k) for c, k in policy.rails.get("output", []) if c.action == "redact"]
        self.released = 0  # buf[:released] has been passed on for display ...
        self.shown = 0  # ... as the first `shown` chars of its redacted text

    def release(self, final: bool = False) -> str:
        """The next part of the answer that may be shown (all that is left when ``final``)."""
        if not self.redact:
            out, self.released = self.buf[self.released:], len(self.buf)
            return out
        end = len(self.buf) if final else self._complete_up_to(self.released)
        if end <= self.released:
            return ""
        self.released = end
        redacted = self.policy.run_rail("output", self.buf[:end], self.context, self.redact).text
        out, self.shown = redacted[self.shown:], len(redacted)
        return out

    def _complete_up_to(self, start: int) -> int:
        """End of the last complete sentence in ``buf[start:]`` (``start`` if none). The last
        piece may still be growing: only sentences followed by more text are complete."""
        ends = [start + e for _, e in sentences(self.buf[start:])]
        complete = [e for e in ends if e < len(self.buf.rstrip())]
        return complete[-1] if complete else start

    def feed(self, piece: str) -> Report | None:
        self.buf += piece
        if self.full:
            rep = self._check(self.buf, 0, self.full)
            if rep is not None:
                return rep
        if self.window and (len(self.buf) - self.scanned >= 24 or re.search(r"[\s.,;:!?]", piece)):
            start = max(0, self.scanned - self.WINDOW)
            self.scanned = len(self.buf)
            rep = self._check(self.buf[start:], start, self.window)
            if rep is not None:
                return rep
        if self.sentence:
            end = self._complete_up_to(self.sentence_end)
            if end > self.sentence_end:
                start, self.sentence_end = self.sentence_end, end
                return self._check(self.buf[start:end], start, self.sentence)
        return None

    def _check(self, text: str, offset: int, items: list[tuple[schema.CheckSpec, Check]]) -> Report | None:
        rep = self.policy.run_rail("output", text, self.context, items)
        if rep.allowed:
            return None
        for f in rep.findings:  # spans relative to the whole answer so far
            f.spans = [Span(s.start + offset, s.end + offset, s.label) for s in f.spans]
        rep.original = rep.text = self.buf
        rep.notes.append(f"stopped while streaming, after {len(self.buf)} chars")
        return rep


# -- loading ------------------------------------------------------------------------------------
def builtin_yaml(name: str) -> str:
    return (BUILTIN_DIR / f"{name}.yaml").read_text(encoding="utf-8")


_builtin_specs: dict[str, schema.PolicySpec] = {}


def looks_like_yaml(s: str) -> bool:
    return "\n" in s or ":" in s


def resolve_spec(ref: str, ws: Workspace, depth: int = 0) -> tuple[schema.PolicySpec, str]:
    """(resolved spec, canonical ref) for a built-in name or a saved NAME[@V]."""
    if depth > 5:
        raise InvalidInputError("guard policy 'extends' chain is too deep (a cycle?)")
    if ref in BUILTINS:
        if ref not in _builtin_specs:  # parsed once: every guarded call resolves its policy
            _builtin_specs[ref] = parse(builtin_yaml(ref), ws, depth + 1)
        return _builtin_specs[ref], ref
    try:
        v = ws.resolve(KIND, ref)
    except NotFoundError:
        saved = ws.names(KIND)
        raise NotFoundError(
            f"no guard policy '{ref}'; built-in: {', '.join(BUILTINS)}; saved: {', '.join(saved) or '(none)'}"
        ) from None
    except CorruptVersion as e:
        raise corrupt(e.ref, "not valid JSON") from None
    try:
        return schema.from_dict(v.content["spec"]), v.ref
    except (KeyError, TypeError, AttributeError, InvalidInputError) as e:
        raise corrupt(v.ref, f"its spec does not load: {e}") from None


def corrupt(ref: str, why: str) -> WorkspaceError:
    """One line for a stored policy version that no longer loads, and what to do about it."""
    name = ref.split("@")[0]
    return WorkspaceError(f"guard policy {ref} is corrupt in this workspace ({why}); save it again "
                          f"with %%guard {name} (or cellops.guard.save), or turn guarding off with "
                          "%guard off")


def parse(yaml_text: str, ws: Workspace, depth: int = 0) -> schema.PolicySpec:
    raw = schema.parse_yaml(yaml_text)
    return schema.validate(raw, lambda base: resolve_spec(base, ws, depth + 1)[0])


def _cached(spec: schema.PolicySpec, ref: str, ws: Workspace) -> Policy:
    from ..models.tasks import model_for

    # llm_judge checks without their own model follow the configured judge model
    key = (str(ws.root), ref + "#" + content_hash(spec.to_dict()) + "#" + model_for("judge"))
    with _cache_lock:
        pol = _cache.get(key)
    if pol is None:
        pol = Policy(spec, ref, ws)  # outside the lock: setup may embed exemplars for seconds
        with _cache_lock:
            pol = _cache.setdefault(key, pol)
    return pol


def load(name_or_yaml: str | Policy, workspace: Workspace | None = None) -> Policy:
    """A policy from a built-in name (``default``, ``strict``), a saved ``NAME[@V]``, or YAML text."""
    if isinstance(name_or_yaml, Policy):
        return name_or_yaml
    if not isinstance(name_or_yaml, str) or not name_or_yaml.strip():
        raise InvalidInputError("give a policy name (default, strict, or a saved NAME[@V]) or YAML text")
    ws = workspace or get_workspace()
    src = name_or_yaml.strip()
    if looks_like_yaml(src):
        spec = parse(name_or_yaml, ws)
        return _cached(spec, "yaml:" + content_hash(spec.to_dict())[:10], ws)
    spec, ref = resolve_spec(src, ws)
    return _cached(spec, ref, ws)


def save(name: str, yaml_text: str, workspace: Workspace | None = None) -> tuple[Policy, bool]:
    """Validate and save ``yaml_text`` as the next version of policy ``name`` (if it changed)."""
    ws = workspace or get_workspace()
    if name in BUILTINS:
        raise InvalidInputError(f"'{name}' is a built-in policy; save yours under another name "
                                f"(start it with 'extends: {name}')")
    spec = parse(yaml_text, ws)
    v, created = ws.save_version(KIND, name, {"yaml": yaml_text, "spec": spec.to_dict()})
    return _cached(spec, v.ref, ws), created
