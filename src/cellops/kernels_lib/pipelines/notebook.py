"""Notebook inputs: loading, the ``parameters`` cell, typed parameters, content hashes.

papermill only *warns* about a missing ``parameters`` tag or an unknown parameter and injects
strings as given; its users' top complaints. Here both are errors with one clear line, and a
value is checked against the type of its default (or annotation) in the parameters cell.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, NotFoundError

PARAMS_TAG = "parameters"
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def notebook_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"notebook '{path}' not found; give the path to an .ipynb file")
    if p.suffix != ".ipynb":
        raise InvalidInputError(
            f"'{path}' is not a notebook; give an .ipynb file or a pipeline .yaml"
        )
    return p.resolve()


def load(path: str | Path) -> Any:
    """The notebook as an nbformat node (v4)."""
    import nbformat

    p = notebook_path(path)
    try:
        return nbformat.read(str(p), as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError, KeyError) as e:
        raise InvalidInputError(f"notebook '{path}' is not valid .ipynb JSON ({e}); re-save it in Jupyter") from None


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def language(path: str | Path) -> str:
    """The notebook's language (papermill needs one; hand-made notebooks may lack it)."""
    meta = load(path).metadata
    return (meta.get("kernelspec", {}).get("language")
            or meta.get("language_info", {}).get("name") or "python")


def parameters_cell_index(nb: Any) -> int:
    for i, cell in enumerate(nb.cells):
        if PARAMS_TAG in cell.get("metadata", {}).get("tags", []):
            return i
    return -1


def declared_parameters(path: str | Path) -> dict[str, dict[str, Any]] | None:
    """name -> {type, default, help} from the parameters cell; None when there is no such cell."""
    from papermill.translators import papermill_translators

    nb = load(path)
    idx = parameters_cell_index(nb)
    if idx < 0:
        return None
    translator = papermill_translators.find_translator(
        nb.metadata.get("kernelspec", {}).get("name", "python3"), language(path))
    out: dict[str, dict[str, Any]] = {}
    for p in (q._asdict() for q in translator.inspect(nb.cells[idx])):
        name = p["name"]
        try:
            default = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError, TypeError):
            default = p["default"]  # an expression (e.g. os.environ[...]): keep its source
        annotated = (p.get("inferred_type_name") or "None").lower()
        typ = annotated if annotated != "none" else _type_name(default)
        out[name] = {"type": typ, "default": default, "help": p.get("help") or ""}
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "any"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict",
            tuple: "list"}.get(type(value), "any")


def check_parameters(path: str | Path, given: dict[str, Any]) -> dict[str, Any]:
    """Validate and coerce ``given`` against the notebook's parameters cell.

    Returns the coerced values. Raises InvalidInputError for a missing parameters cell (when
    values are given), an unknown name, or a value that does not fit the declared type.
    """
    declared = declared_parameters(path)
    if not given:
        return {}
    name = Path(path).name
    if declared is None:
        raise InvalidInputError(
            f"{name} has no cell tagged 'parameters', so -p {next(iter(given))} cannot be applied; "
            "tag the cell holding the defaults with 'parameters' (cell toolbar > Tags)"
        )
    out = {}
    for key, value in given.items():
        if key not in declared:
            known = ", ".join(declared) or "(none)"
            raise InvalidInputError(f"{name} has no parameter '{key}'; its parameters: {known}")
        out[key] = coerce(key, value, declared[key]["type"], declared[key]["default"])
    return out


def coerce(name: str, value: Any, typ: str, default: Any = None) -> Any:
    """``value`` as type ``typ``; strings (from the command line) are parsed."""
    bad = InvalidInputError(
        f"parameter '{name}' expects {typ} (default {default!r}), got {value!r}"
    )
    if typ in ("any", "") or value is None:
        return _parse_any(value) if isinstance(value, str) and typ in ("any", "") else value
    if typ == "str":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if typ == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad
    if typ == "int":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if typ == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if typ in ("list", "dict"):
        parsed = _parse_any(value) if isinstance(value, str) else value
        want = list if typ == "list" else dict
        if isinstance(parsed, tuple) and want is list:
            parsed = list(parsed)
        if not isinstance(parsed, want):
            raise bad
        return parsed
    return value  # a type papermill reports that we do not check (e.g. 'Path')


def _parse_any(text: str) -> Any:
    """A command-line value: YAML scalars/lists/maps, else the plain string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_cli_params(pairs: list[list[str]] | None, files: list[str] | None = None) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs (strings, typed later) over ``-f params.yaml`` files."""
    import yaml

    out: dict[str, Any] = {}
    for f in files or []:
        p = Path(f)
        if not p.is_file():
            raise NotFoundError(f"parameters file '{f}' not found")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise InvalidInputError(f"parameters file '{f}' is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"parameters file '{f}' must hold a mapping name: value")
        out.update(data)
    for pair in pairs or []:
        name, value = pair
        if not name.isidentifier():
            raise InvalidInputError(f"-p {name} {value}: the name must be a Python identifier")
        out[name] = value
    return out
