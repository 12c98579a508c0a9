"""Read YAML spec files into validated models; every problem names file, field and value.

YAML is read with duplicate keys rejected (PyYAML would silently keep the last one).
Pydantic's errors are turned into :class:`~ocplan.errors.Problem` lines so that the CLI
can print them one per line without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ocplan.errors import Problem, SpecError

__all__ = ["load_yaml", "problems_from_validation", "validate_as"]

M = TypeVar("M", bound=BaseModel)

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):  # type: ignore[valid-type,misc]
    """Safe YAML loader that refuses duplicate mapping keys."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML file that must hold a mapping.

    Raises
    ------
    SpecError
        When the file is missing, unreadable, not YAML, or not a mapping.
    """
    source = str(path)
    if not path.exists():
        raise SpecError.one(source, "", "file not found")
    if path.is_dir():
        raise SpecError.one(source, "", "is a directory, expected a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError.one(source, "", f"cannot read file: {exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError.one(source, "", f"malformed YAML{where}: {problem}") from None
    if data is None:
        raise SpecError.one(source, "", "file is empty, expected a YAML mapping")
    if not isinstance(data, dict):
        raise SpecError.one(source, "", f"expected a YAML mapping at the top, got "
                                        f"{type(data).__name__}")
    return data


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif "[" in item or item.startswith("function-"):
            continue  # pydantic's internal tags for unions and validators
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


def _clean_message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def problems_from_validation(source: str, exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Turn a pydantic ValidationError into one Problem per error."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        path = _field_path(tuple(err["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        msg = _clean_message(err["msg"])
        kind = err["type"]
        value: object = err.get("input")
        if kind == "extra_forbidden":
            msg = "unknown field (not in the schema)"
        elif kind == "missing":
            msg = "required field is missing"
            value = None
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            msg = f"not allowed; expected one of {expected}"
        elif kind == "union_tag_invalid":
            expected = err.get("ctx", {}).get("expected_tags", "")
            msg = f"unknown kind; expected one of {expected}"
            path = f"{prefix}.kind" if prefix else "kind"
            value = err.get("ctx", {}).get("tag")
        elif kind == "union_tag_not_found":
            msg = "required field 'kind' is missing"
            path = f"{prefix}.kind" if prefix else "kind"
            value = None
        if isinstance(value, (dict, list)):
            value = None  # too big to echo on one line; the field path says where
        problems.append(Problem(source, path, msg, value))
    return problems


def validate_as(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; raise SpecError listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from_validation(source, exc)) from None
