"""Read YAML spec files into validated models; every problem names file, field and value.

YAML is read with duplicate keys rejected (PyYAML would silently keep the last one).
Pydantic's errors are turned into :class:`~ocplan.errors.Problem` lines so that the CLI
can print them one per line without a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

from pydantic import BaseModel, BeforeValidator, ValidationError
from pydantic.fields import FieldInfo

from ocplan.catalog.yaml_cache import ParseCache
from ocplan.errors import Problem, SpecError
from ocplan.units import DIMENSIONS, Dimension, format_quantity

if TYPE_CHECKING:
    import yaml

__all__ = [
    "MAX_SPEC_FILE_BYTES",
    "load_yaml",
    "parse_yaml",
    "problems_from_validation",
    "read_text_file",
    "validate_as",
]

M = TypeVar("M", bound=BaseModel)

#: (tag, pattern, first characters) of the implicit scalar types accepted. The integer
#: comes before the float so that ``12`` is an int.
_IMPLICIT_SCALARS: tuple[tuple[str, str, str], ...] = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
     r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
)

#: Largest spec file read (system, catalog entry, sweep): the largest catalog entry is
#: about 5 kB and a system file under 1 kB; 1 MiB is room for any hand-written file and
#: small enough to parse in well under a second.
MAX_SPEC_FILE_BYTES = 2**20
#: Most values (scalars, lists and mappings, aliases counted each time they are used) in
#: one spec file: bounds the work of validating a file that aliases one list into many.
MAX_SPEC_VALUES = 100_000
#: Deepest nesting of lists and mappings in a spec file (the schemas nest 4 levels).
MAX_SPEC_DEPTH = 32


@cache
def _strict_loader() -> type[yaml.SafeLoader]:
    """Safe YAML loader with YAML 1.2 core-schema scalars that refuses duplicate keys.

    PyYAML implements YAML 1.1, whose implicit typing surprises: ``010`` is octal 8,
    ``1:00`` is sexagesimal 60, ``yes``/``on`` are booleans, ``2024-01-01`` is a date and
    ``<<`` merges mappings. Here only plain decimal numbers are numbers (a leading zero
    stays text, so ``servers: 010`` is reported, not read as 8 or 10), only ``true`` and
    ``false`` are booleans, and nothing else is converted.

    Built on first use: with the catalog's parse cache warm, a command parses no YAML
    and need not import PyYAML.
    """
    import yaml

    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[valid-type,misc]
        pass

    StrictLoader.yaml_implicit_resolvers = {}
    for tag, pattern, first in _IMPLICIT_SCALARS:
        StrictLoader.add_implicit_resolver(tag, re.compile(pattern), list(first))
    # An empty plain scalar is null (PyYAML looks it up under the first character None).
    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [None])
    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)
    return StrictLoader


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    import yaml

    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, not a {type(key).__name__}",
                key_node.start_mark) from None
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node)
    return mapping


def read_text_file(path: Path, max_bytes: int, what: str = "file") -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes.

    The file is opened without blocking and checked on the open descriptor, so a FIFO, a
    device such as ``/dev/zero`` or a file swapped in after a check is refused, never read
    without end.

    Raises
    ------
    SpecError
        When the path is missing, not a regular file, too large, unreadable or not UTF-8.
    """
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SpecError.one(source, "", "file not found") from None
    except IsADirectoryError:
        raise SpecError.one(source, "", f"is a directory, expected a {what}") from None
    except OSError as exc:
        raise SpecError.one(source, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError.one(source, "", f"is a directory, expected a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError.one(source, "", f"not a regular file (a pipe, socket or device); "
                                            f"expected a {what}")
        if info.st_size > max_bytes:
            raise SpecError.one(source, "", f"{info.st_size:,} bytes is over the limit of "
                                            f"{max_bytes:,} bytes for a {what}")
        raw = os.read(fd, max_bytes + 1)
    except OSError as exc:
        raise SpecError.one(source, "", f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > max_bytes:  # grew after the check
        raise SpecError.one(source, "", f"over the limit of {max_bytes:,} bytes for a {what}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError.one(source, "", f"cannot read file: not UTF-8 text ({exc.reason} at "
                                        f"byte {exc.start}); save it as UTF-8") from None


def _check_extent(data: Any, source: str) -> None:
    """Refuse YAML that nests deeper than MAX_SPEC_DEPTH or holds more than
    MAX_SPEC_VALUES values once aliases are expanded (the work validation would do)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_SPEC_VALUES:
            raise SpecError.one(source, "", f"more than {MAX_SPEC_VALUES:,} values (aliases "
                                            "counted each time they are used)")
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= MAX_SPEC_DEPTH:
            raise SpecError.one(source, "", f"nested deeper than {MAX_SPEC_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text with the strict loader; any YAML error is a SpecError naming the
    line and column."""
    import yaml  # on first parse (_strict_loader says why)

    try:
        data = yaml.load(text, Loader=_strict_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError.one(source, "", f"malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise SpecError.one(source, "", f"nested deeper than {MAX_SPEC_DEPTH} "
                                        "levels") from None
    _check_extent(data, source)
    return data


def load_yaml(path: Path, cache: ParseCache | None = None) -> dict[str, Any]:
    """Read one YAML file that must hold a mapping (its parse taken from and given to
    ``cache`` when one is given: see :mod:`ocplan.catalog.yaml_cache`).

    Raises
    ------
    SpecError
        When the file is missing, not a regular file, over MAX_SPEC_FILE_BYTES,
        unreadable, not YAML, or not a mapping.
    """
    source = str(path)
    text = read_text_file(path, MAX_SPEC_FILE_BYTES, "YAML file")
    key = ParseCache.key(text) if cache is not None else ""
    cached = cache.get(key) if cache is not None else None
    if isinstance(cached, dict):
        return cached
    data = parse_yaml(text, source)
    if data is None:
        raise SpecError.one(source, "", "file is empty, expected a YAML mapping")
    if not isinstance(data, dict):
        raise SpecError.one(source, "", f"expected a YAML mapping at the top, got "
                                        f"{type(data).__name__}")
    if cache is not None:
        cache.put(key, data)
    return data


def _field_path(loc: tuple[int | str, ...], literal_last: bool = False) -> str:
    """Dotted path of ``loc``; ``literal_last`` keeps the last item as the user wrote it
    (an unknown key may contain anything, even the characters of pydantic's tags)."""
    parts: list[str] = []
    for n, item in enumerate(loc):
        if isinstance(item, int) and not (literal_last and n == len(loc) - 1):
            parts.append(f"[{item}]")
            continue
        item = str(item)
        if not (literal_last and n == len(loc) - 1) and (
                "[" in item or item.startswith(("function-", "constrained-"))):
            continue  # pydantic's internal tags for unions and validators
        if not item.isprintable() or not item:
            item = repr(item)  # a key with a newline must not break the one-line rule
        parts.append(("." if parts else "") + item)
    return "".join(parts)


def _clean_message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


# --- what is allowed at a field: read back from the schema -----------------------------

_ID_PATTERN = r"^[a-z0-9][a-z0-9._+-]*$"
_BOUNDS = (("gt", "greater than"), ("ge", "at least"), ("lt", "less than"), ("le", "at most"))


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` and ``X | None`` from a type; return it and the metadata found."""
    meta: list[Any] = []
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp, *extra = get_args(tp)
            for m in extra:
                meta.extend(m.metadata if isinstance(m, FieldInfo) else [m])
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp, meta


def _schema_at(model: Any, loc: Sequence[int | str]) -> tuple[Any, list[Any]]:
    """The type at ``loc`` inside ``model`` and its constraints; ``(None, [])`` if unknown."""
    tp, meta = _unwrap(model)
    for item in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(item, str) \
                and item in tp.model_fields:
            info = tp.model_fields[item]
            tp, meta = _unwrap(info.annotation)
            meta = list(info.metadata) + meta
        elif isinstance(item, int) and get_origin(tp) in (tuple, list):
            args = [a for a in get_args(tp) if a is not Ellipsis]
            if not args:
                return None, []
            tp, meta = _unwrap(args[0])
        else:
            return None, []
    return tp, meta


def _dimension(meta: list[Any]) -> Dimension | None:
    """The unit dimension of a quantity field (its validator accepts 1 SI unit as 1.0)."""
    for m in meta:
        if isinstance(m, BeforeValidator):
            parse = cast(Callable[[Any], Any], m.func)
            for dim in DIMENSIONS.values():
                try:
                    if parse(f"1 {dim.si_unit}") == 1.0:
                        return dim
                except (ValueError, TypeError):
                    continue
    return None


def _limit(value: Any, dim: Dimension | None) -> str:
    if dim is not None:
        return format_quantity(float(value), dim.si_unit)
    if isinstance(value, (int, float)) and float(value).is_integer() and abs(value) < 1e16:
        # Group digits of large bounds (1,048,576) but not of years or small counts.
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return str(value)


def _bounds(meta: list[Any]) -> str:
    """``"at least 1 and at most 64"`` from a field's constraints, or ``""``."""
    dim = _dimension(meta)
    parts = [f"{word} {_limit(getattr(m, attr), dim)}" for attr, word in _BOUNDS
             for m in meta if getattr(m, attr, None) is not None]
    return " and ".join(parts)


def _describe(tp: Any, meta: list[Any]) -> str:
    """What a field accepts, in words, or ``""`` when the schema does not say."""
    dim = _dimension(meta)
    if dim is not None:
        return dim.describe()
    bounds = _bounds(meta)
    bounds = f" ({bounds})" if bounds else ""
    if tp is bool:
        return "true or false"
    if tp is int:
        return f"an integer{bounds}"
    if tp is float:
        return f"a number{bounds}"
    if tp is str:
        if any(getattr(m, "pattern", None) == _ID_PATTERN for m in meta):
            return "an id of lower-case letters, digits and . _ + - (e.g. 'mi300x')"
        return "text"
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping with fields " + ", ".join(tp.model_fields)
    if get_origin(tp) in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        item = _describe(*_unwrap(args[0])) if args else ""
        return f"a list, each item {item}" if item else "a list"
    return ""


_TYPE_ERRORS = frozenset({
    "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing", "bool_type",
    "bool_parsing", "string_type", "model_type", "model_attributes_type", "dict_type",
    "tuple_type", "list_type", "string_pattern_mismatch",
})


def _message(kind: str, model: Any, loc: tuple[int | str, ...], msg: str) -> str:
    """A message saying what is allowed, from the schema at ``loc`` when it is known."""
    if kind == "extra_forbidden":
        msg = "unknown field (not in the schema)"
    elif kind == "missing":
        msg = "required field is missing"
    if model is None:
        return msg
    if kind == "extra_forbidden":
        parent, _ = _schema_at(model, loc[:-1])
        if isinstance(parent, type) and issubclass(parent, BaseModel):
            names = list(parent.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return f"unknown field{hint} (allowed: {', '.join(names)})"
        return msg
    tp, meta = _schema_at(model, loc)
    if tp is None:
        return msg
    if kind == "finite_number":
        bounds = _bounds(meta)
        return f"expected a finite number{f' ({bounds})' if bounds else ''}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bounds = _bounds(meta)
        return f"must be {bounds}" if bounds else msg
    desc = _describe(tp, meta)
    if not desc:
        return msg
    if kind == "missing":
        return f"required field is missing; expected {desc}"
    if kind in _TYPE_ERRORS:
        return f"expected {desc}"
    return msg


def problems_from_validation(source: str, exc: ValidationError, prefix: str = "",
                             model: Any = None,
                             union: Mapping[str, Any] | None = None) -> list[Problem]:
    """Turn a pydantic ValidationError into one Problem per error.

    ``model`` (the validated class) or ``union`` (a discriminated union's classes by tag,
    the tag being the first item of each error's location) lets the messages say what
    the schema allows at each field.
    """
    problems: list[Problem] = []
    errors = exc.errors(include_url=False)
    all_locs = [tuple(e["loc"]) for e in errors]
    for err in errors:
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "too_short" and any(o[:len(loc)] == loc for o in all_locs
                                       if len(o) > len(loc)):
            continue  # a list left short by its bad items: the items' lines say it all
        schema = model
        if union is not None and loc and isinstance(loc[0], str) and loc[0] in union:
            schema, loc = union[loc[0]], loc[1:]
        path = _field_path(loc, literal_last=kind in ("extra_forbidden", "invalid_key"))
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        msg = _message(kind, schema, loc, _clean_message(err["msg"]))
        value: object = err.get("input")
        ctx = err.get("ctx", {})
        if kind == "invalid_key":
            msg = "field names must be strings"
            value = None
        elif kind == "missing":
            value = None
        elif kind == "literal_error":
            msg = f"not allowed; expected one of {ctx.get('expected', '')}"
        elif kind in ("too_short", "too_long"):
            limit = ctx.get("min_length" if kind == "too_short" else "max_length")
            msg = (f"needs {'at least' if kind == 'too_short' else 'at most'} {limit} "
                   f"item(s), got {ctx.get('actual_length')}")
        elif kind in ("string_too_short", "string_too_long"):
            limit = ctx.get("min_length" if kind == "string_too_short" else "max_length")
            msg = (f"must have {'at least' if kind == 'string_too_short' else 'at most'} "
                   f"{limit} character(s)")
        elif kind == "string_pattern_mismatch" and ctx.get("pattern") == _ID_PATTERN \
                and isinstance(value, str):
            msg += _id_spelling(value)
        elif kind == "union_tag_invalid":
            expected = ctx.get("expected_tags", "")
            msg = f"unknown kind; expected one of {expected}"
            path = f"{prefix}.kind" if prefix else "kind"
            value = ctx.get("tag")
        elif kind == "union_tag_not_found":
            tags = f"; expected one of {', '.join(map(repr, union))}" if union else ""
            msg = f"required field 'kind' is missing{tags}"
            path = f"{prefix}.kind" if prefix else "kind"
            value = None
        if isinstance(value, (dict, list)):
            value = None  # too big to echo on one line; the field path says where
        problems.append(Problem(source, path, msg, value))
    return _one_line_per_field(problems)


def _id_spelling(value: str) -> str:
    """The id ``value`` may have meant, lower case with blanks as hyphens ("MI300X" ->
    'mi300x'), as a clause, when that spelling is an id at all; whether the catalog has
    it is the lookup's to say (with its own suggestions)."""
    spelled = "-".join(value.lower().split())
    return f"; in lower case: '{spelled}'" if re.fullmatch(_ID_PATTERN, spelled) else ""


#: How a literal's message starts; inside a union it reads as one more allowed form.
_LITERAL_PREFIX = "not allowed; expected "


def _one_line_per_field(problems: list[Problem]) -> list[Problem]:
    """A union field (an integer or ``'unpublished'``) fails once per branch, each at the
    same field and value: say what each branch allows on one line."""
    out: list[Problem] = []
    for p in problems:
        last = out[-1] if out else None
        if last is not None and (last.source, last.field) == (p.source, p.field) \
                and p.field and last.value == p.value and p.value is not None:
            out[-1] = replace(last, message=f"{last.message}; or "
                                            f"{p.message.removeprefix(_LITERAL_PREFIX)}")
        else:
            out.append(p)
    return out


def validate_as(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; raise SpecError listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from_validation(source, exc, model=model)) from None
