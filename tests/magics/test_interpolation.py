"""One interpolation syntax, {var}, across the magics; $var and {{ var }} get one line naming it."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from cellops.kernels_lib import prompts
from cellops.magics.context import MagicContext, interpolate


@pytest.fixture
def ctx(ip) -> MagicContext:
    ip.user_ns["t_thing"] = "the Eiffel Tower"
    return MagicContext(ip, ip.magics_manager.registry["Cellops"])


def test_braces_insert_and_double_braces_are_literal(ctx) -> None:
    assert interpolate(ctx, "When was {t_thing} built? {{x}} costs $5") == "When was the Eiffel Tower built? {x} costs $5"
    assert interpolate(ctx, "$HOME/docs and {{ not_a_var }}") == "$HOME/docs and { not_a_var }"
    with pytest.raises(UsageError, match="no variable named 't_nope'"):
        interpolate(ctx, "{t_nope}")


@pytest.mark.parametrize("body", ["When was $t_thing built?", "When was {{ t_thing }} built?"])
def test_other_syntaxes_name_the_one_to_use(ip, ctx, body: str) -> None:
    with pytest.raises(UsageError, match=r"write \{t_thing\} to insert the notebook variable"):
        ip.run_cell_magic("rag", "ask kb -k 1", body)


def test_build_source_lines_expand_braces(ip, ctx, tmp_path) -> None:
    ip.user_ns["t_missing"] = str(tmp_path / "nothing-here")
    with pytest.raises(UsageError, match="nothing-here"):  # {t_missing} reached the loader expanded
        ip.run_cell_magic("rag", "build kb", "{t_missing}")


def test_prompt_template_body_says_jinja(ip, ctx, workspace) -> None:
    for body in ("Where is {t_thing}?", "Where is $t_thing?"):
        with pytest.raises(UsageError, match=r"Jinja template: write \{\{ t_thing \}\}"):
            ip.run_cell_magic("prompt", "where --no-run", body)
    assert prompts.history("where", workspace) == []  # nothing saved
    ip.run_cell_magic("prompt", "where --no-run", "Where is {{ t_thing }}? Reply as {json}.")
    assert prompts.get("where").template == "Where is {{ t_thing }}? Reply as {json}."
