"""Prompt templates and versions (no model needed)."""

from __future__ import annotations

import pytest

from cellops.kernels_lib import prompts
from cellops.kernels_lib.errors import InvalidInputError, NotFoundError
from cellops.kernels_lib.prompts import template as tpl


def test_render_strict_and_sandboxed() -> None:
    assert tpl.render("Hi {{ name | upper }}", {"name": "ada"}) == "Hi ADA"
    with pytest.raises(InvalidInputError, match="undefined variable 'topic'.*-p topic="):
        tpl.render("About {{ topic }}", {})
    with pytest.raises(InvalidInputError, match="syntax error on line 2"):
        tpl.render("ok\n{% if %}", {})
    with pytest.raises(InvalidInputError, match="not allowed"):
        tpl.render("{{ x.__class__.__mro__ }}", {"x": 1})
    assert tpl.variables("{{ a }} {% for i in b %}{{ i }}{% endfor %}") == {"a", "b"}


def test_save_versions_by_content() -> None:
    p1, c1 = prompts.save("sum", "Summarize {{ text }}")
    p1b, c1b = prompts.save("sum", "Summarize {{ text }}")
    p2, c2 = prompts.save("sum", "Summarize {{ text }}", system="Be brief")
    p3, c3 = prompts.save("sum", "Summarize {{ text }}", system="Be brief", params={"temperature": 0.5})
    assert (c1, c1b, c2, c3) == (True, False, True, True)
    assert [p.version for p in prompts.history("sum")] == [1, 2, 3]
    assert prompts.get("sum@2").system == "Be brief"
    d = prompts.diff("sum@1", "sum@3")
    assert "+system: Be brief" in d and "temperature" in d


def test_bad_template_is_rejected_before_saving() -> None:
    with pytest.raises(InvalidInputError, match="line 1"):
        prompts.save("x", "{{ unclosed")
    with pytest.raises(NotFoundError):
        prompts.get("x")


def test_alias_resolution() -> None:
    prompts.save("a", "one")
    prompts.save("a", "two")
    prompts.alias("a@1", "prod")
    assert prompts.get("a@prod").template == "one"
    with pytest.raises(NotFoundError, match="no version, alias or hash 'staging'"):
        prompts.get("a@staging")


def test_a_cases_file_with_a_key_given_twice_is_one_line(tmp_path) -> None:
    from cellops.kernels_lib.prompts.cases import load_cases

    path = tmp_path / "cases.yaml"
    path.write_text("- vars: {w: hi}\n  assert: [{type: contains, value: hi}]\n"
                    "  assert: [{type: contains, value: bye}]\n")
    with pytest.raises(InvalidInputError, match=r"^cases.yaml is not valid YAML: key 'assert' is defined "
                                                r"twice \(lines 2 and 3\); keep one$"):
        load_cases(str(path))
    path.write_text("- vars: {w: hi\n")
    with pytest.raises(InvalidInputError, match=r"^cases.yaml is not valid YAML: line 2: [^\n]*$"):
        load_cases(str(path))
