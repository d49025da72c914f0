"""Template render errors are one line naming the template, and the sandbox bounds sizes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cellops.kernels_lib.errors import InvalidInputError
from cellops.kernels_lib.prompts import template as tpl

VALUES = {"x": "text", "a": {"b": {}}, "n": 3, "items": ["p", "q"]}


@pytest.mark.parametrize(("source", "problem"), [
    ("{{ 1/0 }}", "ZeroDivisionError: division by zero"),
    ("{{ x|round }}", "TypeError"),
    ("{{ range(10**9)|list }}", "Range too big"),
    ("{{ n.upper() }}", "has no attribute or key 'upper'"),
])
def test_runtime_errors_are_one_line_naming_the_template(source: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        tpl.render(source, VALUES, "greet@2")
    msg = str(e.value)
    assert "greet@2" in msg and problem in msg and "\n" not in msg


@pytest.mark.parametrize("source", [
    "{{ ('a'*10**3)*10**4 }}",  # 10 MB: renders today
    "{{ 'x'.center(10**7) }}", "{{ 'x'|center(10**7) }}", "{{ '{:>20000000}'.format(1) }}",
    "{{ '{:>{}}'.format(1, 10**7) }}", "{{ '%*d' % (10**7, 1) }}", "{{ (['a'*10**4]*200)|join }}",
    "{{ ('a'*1000)|replace('a', 'b'*10000) }}", "{{ ('a'*10**5) ~ ('b'*10**6) }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'abcdefghijk' }}{% endfor %}",
])
def test_output_and_every_value_are_bounded(source: str) -> None:
    with pytest.raises(InvalidInputError, match=r"too large to render: .*over the 1,000,000 limit"):
        tpl.render(source, VALUES, "p@1")


def test_huge_powers_are_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"p@1 is too large to render: 7 \*\* 1000000 is too large"):
        tpl.render("{{ 7**(10**6) }}", VALUES, "p@1")


def test_ten_gigabytes_of_repetition_is_refused_without_allocating(tmp_path: Path) -> None:
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from cellops.kernels_lib.prompts import template as t\n"
            "try:\n    t.render(\"{{ ('a'*10**5)*10**5 }}\", {}, 'big@1')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(Path(tpl.__file__).resolve().parents[3])})
    assert out.stdout.startswith("InvalidInputError big@1 is too large to render"), out.stdout + out.stderr


def test_ordinary_templates_still_render() -> None:
    src = ("Hello {{ x|upper }} ~ {{ 'n=%03d' % n }} {{ '{:>4}'.format(n) }} {{ items|join(', ') }} "
           "{{ 'ab' * 3 }} {{ 2**10 }}{% for i in range(3) %}.{{ i }}{% endfor %} {{ a.b|length }}")
    assert tpl.render(src, VALUES) == "Hello TEXT ~ n=003    3 p, q ababab 1024.0.1.2 0"


def test_undefined_attribute_names_the_missing_step() -> None:
    with pytest.raises(InvalidInputError) as e:
        tpl.render("Dear {{ a.b.c }}", VALUES, "letter@1")
    assert str(e.value).startswith("'a.b' has no attribute or key 'c' in letter@1")
    with pytest.raises(InvalidInputError, match="undefined variable 'who' in letter@1: pass -p who="):
        tpl.render("Dear {{ who.name }}", VALUES, "letter@1")


SILENT_LOOPS = [
    "{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}",
    "{% for i in range(10**5) %}{% for j in items * 10**4 %}{% endfor %}{% endfor %}",  # no range
    "{% for i in range(10**5) %}{% if range(10**5)|sum %}{% endif %}{% endfor %}",  # one call per turn
]


def _render_elsewhere(source: str, where: str, setup: str = "") -> tuple[str, float, str]:
    """Render in a subprocess, so that unbounded code (hours of spinning) fails on the timeout
    instead of hanging the suite: (the error line, seconds taken, everything printed)."""
    code = ("import sys, time\nfrom cellops.kernels_lib.prompts import template as t\n" + setup +
            "t0 = time.monotonic()\ntry:\n    t.render(sys.argv[1], {'items': ['p', 'q']}, sys.argv[2])\n"
            "except Exception as e:\n    print(type(e).__name__, e)\nprint(round(time.monotonic() - t0, 1))\n")
    out = subprocess.run([sys.executable, "-c", code, source, where], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(Path(tpl.__file__).resolve().parents[3])})
    first, seconds = out.stdout.splitlines()
    return first, float(seconds), out.stdout + out.stderr


@pytest.mark.parametrize("source", SILENT_LOOPS)
def test_loops_that_print_nothing_are_bounded_in_time(source: str) -> None:
    first, seconds, printed = _render_elsewhere(source, "spin@1")
    assert first == ("InvalidInputError spin@1 is too large to render: its loops would run over 1,000,000 "
                     "steps, the limit for a prompt; loop over fewer items"), printed
    assert seconds < 30


def test_a_loop_with_a_slow_body_stops_on_the_clock() -> None:
    # 10**5 turns are within the step budget, but each sorts 200k strings: hours without the clock
    source = "{% for i in range(10**5) %}{% set s = ('ab' * 200000).split('a')|sort|first %}{% endfor %}"
    first, seconds, printed = _render_elsewhere(source, "slow@1", setup="t.MAX_SECONDS = 1\n")
    assert first == ("InvalidInputError slow@1 is too large to render: its loops ran over 1 s, the limit for "
                     "a prompt; loop over fewer items or do less in each turn"), printed
    assert seconds < 20


def test_step_budget_is_per_render_and_covers_expressions() -> None:
    nested = "{% for i in range(500) %}{% for j in range(500) %}{% endfor %}{% endfor %}ok"  # 500k steps
    assert [tpl.render(nested, {}) for _ in range(3)] == ["ok"] * 3  # each render starts afresh
    assert tpl.evaluate("range(10**5)|sum", {}) == 4999950000
    with pytest.raises(InvalidInputError, match="e@1 is too large to evaluate: its loops would run over"):
        tpl.evaluate("[" + ", ".join(["range(10**5)"] * 11) + "]|length", {}, "e@1")  # 1.1M items
