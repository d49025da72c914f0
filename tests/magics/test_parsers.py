"""Every magic command parses its line into a frozen dataclass (DESIGN.md house style 3),
tested without a shell."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
from IPython.core.error import UsageError

from cellops.magics import MAGICS
from cellops.magics.context import MagicArgumentParser


def _parsers() -> list[MagicArgumentParser]:
    found = []
    for name in (*MAGICS, "prompt_loop", "prompt_perturb"):
        module = importlib.import_module(f"cellops.magics.{name}")
        found += [v for v in vars(module).values() if isinstance(v, MagicArgumentParser)]
    return found


def test_every_parser_builds_a_frozen_args_class() -> None:
    parsers = _parsers()
    assert len(parsers) >= 20
    for p in parsers:
        cls = p.args_class()
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, p.prog


def test_parse_line_gives_typed_frozen_values() -> None:
    from cellops.magics.prompt import cell_parser

    a = cell_parser.parse_line("cap --max-tokens 8 -p 'q=a b' --no-run")
    assert type(a).__name__ == "PromptArgs" and a.max_tokens == 8 and a.param == ["q=a b"] and a.no_run
    types = {f.name: f.type for f in dataclasses.fields(a)}
    assert types["name"] is str and types["no_run"] is bool and types["max_tokens"] == int | None
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "other"  # type: ignore[misc]
    with pytest.raises(UsageError, match="%%prompt: argument --max-tokens: invalid int value"):
        cell_parser.parse_line("cap --max-tokens lots")
