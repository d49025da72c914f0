"""Policy YAML validation: every mistake is one line naming it and listing what is valid."""

from __future__ import annotations

import pytest

from cellops.kernels_lib import guard
from cellops.kernels_lib.errors import InvalidInputError, NotFoundError
from cellops.kernels_lib.guard import schema
from cellops.kernels_lib.guard.policy import builtin_yaml, parse


def _validate(text: str):
    return schema.validate(schema.parse_yaml(text))


@pytest.mark.parametrize("text,match", [
    ("", "empty guard policy"),
    ("   \n", "empty guard policy"),
    ("input: [check: pii", "not valid YAML at line 1"),
    ("- just a list", "must be a YAML mapping"),
    ("description: nothing here", "has no checks"),
    ("inputs:\n  - check: pii", "unknown policy key 'inputs'; valid keys: description, extends, max_chars, input"),
    ("input:\n  - check: pi", "unknown check 'pi'; valid checks: banned, groundedness, harmful, injection"),
    ("input:\n  - check: pii\n    entitys: [EMAIL_ADDRESS]", "unknown option 'entitys' for check 'pii'; valid options: entities"),
    ("input:\n  - check: pii\n    threshold: 1.5", "threshold of check 'pii' must be a number between 0 and 1, got 1.5"),
    ("input:\n  - check: pii\n    threshold: high", "must be a number between 0 and 1, got 'high'"),
    ("input:\n  - check: pii\n    threshold: true", "must be a number between 0 and 1, got True"),
    ("input:\n  - check: pii\n    action: delete", "unknown action 'delete'.*valid actions: block, redact, warn, log, off"),
    ("input:\n  - check: harmful\n    action: redact", "has no spans to redact.*redact works with: banned, pii, regex"),
    ("input:\n  - check: groundedness", "cannot run on the input rail; it runs on: output"),
    ("input:\n  - check: harmful\n    cues: maybe", "option 'cues' of check 'harmful' must be true or false"),
    ("input: pii", "'input:' must be a list of checks"),
    ("max_chars: -3\ninput: [pii]", "max_chars must be a whole number >= 1"),
])
def test_bad_policies_name_the_problem(text: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        _validate(text)


def test_short_forms_defaults_and_options() -> None:
    spec = _validate("input:\n  - pii\n  - check: injection\n    threshold: 0.3\noutput:\n  - check: json\n    extract: false")
    pii, inj = spec.rails["input"]
    assert (pii.check, pii.action, pii.threshold) == ("pii", "redact", 0.4)
    assert "EMAIL_ADDRESS" in pii.options["entities"] and "URL" not in pii.options["entities"]
    assert (inj.action, inj.threshold) == ("block", 0.3)
    assert spec.rails["output"][0].options == {"schema": None, "extract": False}
    assert spec.rails["retrieval"] == ()


def test_extends_overrides_removes_and_adds(workspace) -> None:
    spec = parse("extends: default\ninput:\n  - check: harmful\n    threshold: 0.9\n"
                 "  - check: pii\n    action: off\n  - check: banned\n    phrases: [acme]", workspace)
    ids = [c.id for c in spec.rails["input"]]
    assert ids == ["injection", "harmful", "banned"]
    assert spec.rails["input"][1].threshold == 0.9
    base = parse(builtin_yaml("default"), workspace)
    assert spec.rails["output"] == base.rails["output"] and spec.max_chars == base.max_chars


def test_extends_unknown_policy_lists_available(workspace) -> None:
    with pytest.raises(NotFoundError, match="no guard policy 'nope'; built-in: default, strict"):
        parse("extends: nope", workspace)


def test_two_checks_of_one_kind_need_ids() -> None:
    spec = _validate("output:\n  - check: regex\n    patterns: ['\\d+']\n"
                     "  - check: regex\n    id: secret_words\n    patterns: [sesame]")
    assert [c.id for c in spec.rails["output"]] == ["regex", "secret_words"]


def test_save_versions_and_builtin_names_are_reserved(workspace) -> None:
    y1 = "input:\n  - check: banned\n    phrases: [foo]\n"
    p1 = guard.save("mine", y1, workspace)
    assert p1.ref == "mine@1"
    assert guard.save("mine", y1, workspace).ref == "mine@1"  # unchanged: no new version
    p2 = guard.save("mine", y1.replace("foo", "bar"), workspace)
    assert p2.ref == "mine@2" and p2.hash != p1.hash
    assert guard.load("mine@1", workspace).hash == p1.hash
    assert guard.show("mine@1", workspace) == y1
    with pytest.raises(InvalidInputError, match="'default' is a built-in policy"):
        guard.save("default", y1, workspace)
    with pytest.raises(InvalidInputError, match="unknown check"):
        guard.save("broken", "input: [nope]", workspace)
    assert workspace.names("guard") == ["mine"]  # the bad policy left nothing behind


def test_load_unknown_name_lists_builtins_and_saved(workspace) -> None:
    guard.save("mine", "input: [pii]", workspace)
    with pytest.raises(NotFoundError, match="built-in: default, strict; saved: mine"):
        guard.load("other", workspace)
    with pytest.raises(InvalidInputError, match="give a policy name"):
        guard.load("", workspace)
