"""The one YAML loader for user and workspace YAML: ``yaml.safe_load`` that refuses duplicate keys.

``yaml.safe_load`` keeps the last of two equal keys in a mapping, so a chain with two steps named
``a`` (or a policy with two ``input:`` lists) silently loses one. :func:`safe_load` raises
:class:`DuplicateKeyError` instead, at any nesting level, naming the key and both lines. It is a
``yaml.YAMLError`` (with ``problem`` and ``problem_mark``), so a caller that already turns YAML
errors into one line keeps working unchanged; merge keys (``<<: *base``) may still be overridden.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping gives the same key twice; ``key``, ``line`` and ``first_line`` are 1-based lines."""

    def __init__(self, key: Any, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(None, None, f"key '{key}' is defined twice (lines {first.line + 1} and "
                                     f"{again.line + 1}); keep one", again)
        self.key, self.first_line, self.line = key, first.line + 1, again.line + 1


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader whose mappings reject a key given twice."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: the base constructor says so
                    continue
                if first is not key_node.start_mark:
                    raise DuplicateKeyError(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def safe_load(stream: Any) -> Any:
    """Like ``yaml.safe_load`` (no Python objects, no pickle), but a duplicate key raises."""
    return yaml.load(stream, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def one_line(e: Exception) -> str:
    """A YAML error as one line: what is wrong and its line ("line 3: key 'a' is defined twice ...")."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if isinstance(e, DuplicateKeyError) or mark is None:
        return problem
    return f"line {mark.line + 1}: {problem}"
